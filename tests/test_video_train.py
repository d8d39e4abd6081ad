"""scripts/train_video.py resumes exactly: stopping and rerunning gives the uninterrupted run's weights."""

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import train_video  # noqa: E402


def run(out: Path, latents: Path, *extra: str) -> None:
    args = train_video.parse_args(["--out", str(out), "--latents", str(latents), "--steps", "4", "--batch", "2",
                                   "--crop", "4", "--seq-len", "3", "--log-every", "1", "--checkpoint-every", "10",
                                   *extra])
    train_video.train(args)


def test_resume_is_exact(tmp_path):
    g = torch.Generator().manual_seed(0)
    latents = tmp_path / "latents.safetensors"
    save_file({f"clip-{i}": torch.randn(5, 128, 8, 8, generator=g).half() for i in range(2)}, str(latents))
    run(tmp_path / "a", latents)
    run(tmp_path / "b", latents, "--stop-at", "2")
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["step"] == 2
    run(tmp_path / "b", latents)
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 4
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
