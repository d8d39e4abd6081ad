"""How well train_video's distortion term estimates the pixel error that P-frame latent error makes.

    OMP_NUM_THREADS=1 python scripts/distortion_estimate.py --model stem-elic-copy@2 \\
        --latents runs/video/latents-elic-context-hyperprior@16.safetensors

``train_video.py --distortion`` never runs the synthesis: it prices the latent error ``y − ŷ`` of
each P-frame by per-channel weights (:func:`train_video.synthesis_weights`, a finite difference of
the image model's ``g_s`` on a fixed training sample). Here the video model codes the held-out clips
of the latent cache (first frame as its I-frame, then P-frames, as in training) and, per P-frame,
compares that estimate with the real squared error ``|g_s(ŷ) − g_s(y)|²`` the synthesis makes
(pixels in [0, 1], whole padded frame). Prints, per clip and quality, the ratio of the summed
estimate to the summed real error and their correlation over frames. docs/benchmarks.md,
"stem-elic-copy".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train_video import Sampler, intra_reference, synthesis_weights  # noqa: E402

from neuralcodec.errors import NeuralCodecError  # noqa: E402
from neuralcodec.models.video_weights import load_video_model  # noqa: E402


@torch.no_grad()
def clip_errors(temporal, image, u: torch.Tensor, quality: float, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Estimated and real squared pixel error (T-1,) of the P-frames of ungained latents ``u`` (T, M, h, w)."""
    g, ig = image.gain(torch.full((1,), float(quality)))
    y = u.float() * g
    y_prev = intra_reference(image, y[:1])
    est, real = [], []
    for t in range(1, y.shape[0]):
        y_hat = temporal(y[t : t + 1], y_prev)["y_hat"]
        est.append(((y[t : t + 1] - y_hat) * ig).pow(2).mul(weights[:, None, None]).sum())
        real.append((image.g_s(y_hat * ig) - image.g_s(y[t : t + 1] * ig)).pow(2).sum())
        y_prev = y_hat
    return torch.stack(est), torch.stack(real)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="stem-elic-copy", help="video model id or id@N")
    p.add_argument("--latents", required=True, help="train_video.py's latent cache of the model's image weights")
    p.add_argument("--qualities", nargs="+", type=float, default=[0.0, 1.5, 3.0])
    p.add_argument("--frames", type=int, default=9, help="frames per clip (the first is the I-frame)")
    args = p.parse_args()
    try:
        loaded = load_video_model(args.model)
    except NeuralCodecError as exc:
        sys.exit(f"distortion_estimate.py: {exc}")
    from safetensors.torch import load_file

    if not Path(args.latents).is_file():
        sys.exit(f"distortion_estimate.py: {args.latents}: no such latent cache (train_video.py builds it)")
    clips = load_file(args.latents)
    image, temporal = loaded.codec.image, loaded.codec.temporal
    if Path(args.latents).name != f"latents-{loaded.image.ref}.safetensors":
        sys.exit(f"distortion_estimate.py: {args.latents} is not the cache of {loaded.ref}'s image weights "
                 f"(latents-{loaded.image.ref}.safetensors)")
    # the same fixed sample train_video.py prices its distortion with
    weights = synthesis_weights(image, Sampler(clips, 12)(4, 1, torch.Generator().manual_seed(1))[:, 0])
    print(f"{loaded.ref} on {loaded.image.ref}; P-frames 1-{args.frames - 1} of each held-out clip")
    print("clip              quality  estimate / real  correlation over frames")
    for name in ("foreman-heldout", "carphone-heldout"):
        for q in args.qualities:
            est, real = clip_errors(temporal, image, clips[name][: args.frames], q, weights)
            corr = torch.corrcoef(torch.stack([est, real]))[0, 1] if len(est) > 2 else torch.tensor(float("nan"))
            print(f"{name:17s} {q:7.2f}  {float(est.sum() / real.sum()):15.3f}  {float(corr):11.3f}")


if __name__ == "__main__":
    main()
