"""scripts/train_video.py resumes exactly: stopping and rerunning gives the uninterrupted run's weights."""

import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from neuralcodec.errors import CheckpointError, ModelError

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


@pytest.mark.parametrize("model", ["stem-msh", "stem-elic", "stem-elic-cg", "stem-elic-copy --init stem-elic-cg@1 --distortion 1 --image-model elic-context-hyperprior@16"])
def test_resume_is_exact(tmp_path, model):
    """Also where the reference frame goes through an image model's context passes (stem-elic),
    where the P-frame model has them too (stem-elic-cg) and from another model's weights (--init)
    with the distortion term."""
    latents = fake_latents(tmp_path)
    model = ["--model", *model.split()]
    run(tmp_path / "a", latents, *model)
    run(tmp_path / "b", latents, *model, "--stop-at", "2")
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["step"] == 2
    run(tmp_path / "b", latents, *model)
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


def test_init_from_another_video_model_copies_what_they_share():
    """--init stem-elic-cg@1: stem-elic-copy starts as that model, its copy gates closed (zero)."""
    from neuralcodec.models.video_registry import get_video_spec
    from neuralcodec.models.video_weights import load_video_model

    start = load_video_model("stem-elic-cg@1")
    model = get_video_spec("stem-elic-copy").build()
    train_video.init_from_video(model, "stem-elic-cg@1", start.image.digest)
    own = model.state_dict()
    for k, v in start.codec.temporal.state_dict().items():
        assert torch.equal(own[k], v), k
    assert all(not net[-1].weight.any() and not net[-1].bias.any() for net in model.nets.gates)
    with pytest.raises(ModelError, match="was trained on"):
        train_video.init_from_video(model, "stem-elic-cg@1", b"\0" * 32)
    with pytest.raises(ModelError, match="not a subset"):
        other = load_video_model("stem-elic")  # a three-section model: other networks
        train_video.init_from_video(get_video_spec("stem-elic-cg").build(), "stem-elic", other.image.digest)


def test_the_distortion_term_reaches_the_means():
    """ŷ = round(y - μ) + μ with the symbol held: the estimated pixel error has a gradient on the
    copy gates that move μ (straight-through rounding would give exactly zero)."""
    from neuralcodec.models.video_registry import get_video_spec
    from neuralcodec.models.weights import load_model

    image = load_model("elic-context-hyperprior").model.eval().requires_grad_(False)
    model = get_video_spec("stem-elic-copy").build()
    model.init_from_image(image)
    u = torch.randn(2, 3, 128, 8, 8, generator=torch.Generator().manual_seed(0))
    weights = train_video.synthesis_weights(image, u[:, 0])
    assert weights.shape == (128,) and (weights > 0).all()
    bits, sse = train_video.sequence_cost(model, image, u, torch.tensor([1.0, 4.0]), torch.tensor([False, False]), weights)
    assert bits.shape == sse.shape == (2, 2) and (sse > 0).all()
    sse.sum().backward()
    assert model.nets.gates[0][-1].bias.grad.abs().sum() > 0
    _, none = train_video.sequence_cost(model, image, u, torch.tensor([1.0, 4.0]), torch.tensor([False, False]))
    assert not none.any()


def test_a_bad_init_stops_before_the_latents_are_built(tmp_path):
    latents = tmp_path / "latents.safetensors"
    with pytest.raises(ModelError, match="unknown video model"):
        run(tmp_path / "a", latents, "--model", "stem-elic-copy", "--init", "nope@1")
    assert not latents.exists()


def test_the_distortion_estimate_tracks_the_real_synthesis_error():
    """scripts/distortion_estimate.py: per-channel synthesis weights price a P-frame's latent error
    within a small factor of what the synthesis really makes of it, on a moving photo crop."""
    import numpy as np
    from PIL import Image

    import distortion_estimate
    from neuralcodec.models.video_weights import load_video_model

    loaded = load_video_model("stem-elic-copy@2")
    image, temporal = loaded.codec.image, loaded.codec.temporal
    photo = np.asarray(Image.open(Path(__file__).resolve().parents[1] / "samples" / "coffee.png").convert("RGB"))
    frames = np.stack([photo[10 + 2 * t : 138 + 2 * t, 20 + 3 * t : 148 + 3 * t] for t in range(3)])
    with torch.no_grad():
        u = image.g_a(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255)
    weights = train_video.synthesis_weights(image, u[:1])
    est, real = distortion_estimate.clip_errors(temporal, image, u, 1.5, weights)
    assert est.shape == real.shape == (2,)
    assert ((est / real > 0.3) & (est / real < 3)).all(), (est, real)
