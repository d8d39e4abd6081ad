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

from train_video import Sampler, intra_reference, latent_sse, training_weights  # noqa: E402

from neuralcodec.errors import NeuralCodecError  # noqa: E402
from neuralcodec.models.video_weights import SECTION, get_video_spec, installed_entry, load_video_model  # noqa: E402


@torch.no_grad()
def clip_errors(temporal, image, u: torch.Tensor, quality: float, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Estimated and real squared pixel error (T-1,) of the P-frames of ungained latents ``u`` (T, M, h, w)."""
    g, ig = image.gain(torch.full((1,), float(quality)))
    y = u.float() * g
    y_prev = intra_reference(image, y[:1])
    est, real = [], []
    for t in range(1, y.shape[0]):
        y_hat = temporal(y[t : t + 1], y_prev)["y_hat"]
        est.append(latent_sse(y[t : t + 1], y_hat, ig, weights)[0])
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
    if args.frames < 2:
        p.error("--frames: at least 2 (an I-frame and a P-frame)")
    try:
        loaded = load_video_model(args.model)
        training = installed_entry(args.model, get_video_spec, SECTION)[1].get("training", {})
    except NeuralCodecError as exc:
        sys.exit(f"distortion_estimate.py: {exc}")
    if Path(args.latents).name != f"latents-{loaded.image.ref}.safetensors":
        sys.exit(f"distortion_estimate.py: {args.latents} is not the cache of {loaded.ref}'s image weights "
                 f"(latents-{loaded.image.ref}.safetensors, which train_video.py builds)")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        clips = load_file(args.latents)
    except (OSError, SafetensorError) as exc:
        sys.exit(f"distortion_estimate.py: {args.latents}: not a readable latent cache ({exc})")
    if missing := {"foreman-heldout", "carphone-heldout"} - set(clips):
        sys.exit(f"distortion_estimate.py: {args.latents} lacks the held-out clips {sorted(missing)}")
    image, temporal = loaded.codec.image, loaded.codec.temporal
    # the weights the model's --distortion run priced with (its sampler drew them: same crop, same still share)
    weights = training_weights(image, Sampler(clips, training.get("crop_latent", 12), training.get("static_frac", 0.0)))
    print(f"{loaded.ref} on {loaded.image.ref}; P-frames 1-{args.frames - 1} of each held-out clip")
    print("clip              quality  estimate / real  correlation over frames")
    for name in ("foreman-heldout", "carphone-heldout"):
        for q in args.qualities:
            est, real = clip_errors(temporal, image, clips[name][: args.frames], q, weights)
            corr = torch.corrcoef(torch.stack([est, real]))[0, 1] if len(est) > 2 else torch.tensor(float("nan"))
            print(f"{name:17s} {q:7.2f}  {float(est.sum() / real.sum()):15.3f}  {float(corr):11.3f}")


if __name__ == "__main__":
    main()
