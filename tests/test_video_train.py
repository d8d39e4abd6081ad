"""scripts/train_video.py resumes exactly: stopping and rerunning gives the uninterrupted run's weights."""

import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from neuralcodec.errors import CheckpointError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import train_video  # noqa: E402


def run(out: Path, latents: Path, *extra: str) -> None:
    args = train_video.parse_args(["--out", str(out), "--latents", str(latents), "--steps", "4", "--batch", "2",
                                   "--crop", "4", "--seq-len", "3", "--log-every", "1", "--checkpoint-every", "10",
                                   *extra])
    train_video.train(args)


def fake_latents(tmp_path) -> Path:
    g = torch.Generator().manual_seed(0)
    latents = tmp_path / "latents.safetensors"
    save_file({f"clip-{i}": torch.randn(5, 128, 8, 8, generator=g).half() for i in range(2)}, str(latents))
    return latents


@pytest.mark.parametrize("model", ["stem-msh", "stem-elic", "stem-elic-cg"])
def test_resume_is_exact(tmp_path, model):
    """Also where the reference frame goes through an image model's context passes (stem-elic) and
    where the P-frame model has them too (stem-elic-cg)."""
    latents = fake_latents(tmp_path)
    run(tmp_path / "a", latents, "--model", model)
    run(tmp_path / "b", latents, "--model", model, "--stop-at", "2")
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["step"] == 2
    run(tmp_path / "b", latents, "--model", model)
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 4
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_a_checkpoint_of_other_image_weights_is_not_resumed(tmp_path):
    latents = fake_latents(tmp_path)
    run(tmp_path / "a", latents, "--stop-at", "1")
    ck = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    torch.save({**ck, "image_sha256": "ab" * 32}, tmp_path / "a" / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="trained on other weights of mean-scale-hyperprior"):
        run(tmp_path / "a", latents)


def test_static_sequences_repeat_one_frame_and_the_rest_move():
    """--static-frac: that share of the sequences is one latent crop repeated (a still scene)."""
    g = torch.Generator().manual_seed(0)
    clips = {"clip": torch.randn(9, 4, 6, 6, generator=g)}
    still = train_video.Sampler(clips, 4, static_frac=1.0)(3, 4, torch.Generator().manual_seed(1))
    assert still.shape == (3, 4, 4, 4, 4) and torch.equal(still, still[:, :1].expand_as(still))
    moving = train_video.Sampler(clips, 4)(3, 4, torch.Generator().manual_seed(1))
    assert all(not torch.equal(s[0], s[1]) for s in moving)
