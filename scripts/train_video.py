"""Train the temporal entropy model of a video model (the image model stays frozen).

    nice -n 10 env OMP_NUM_THREADS=1 python scripts/train_video.py --out runs/video/stem-msh --steps 3000
    python scripts/train_video.py --out runs/video/stem-msh --export     # weights/stem-msh.safetensors

1. Latents are computed once (``<out>/../latents-<image model>@<N>.safetensors``): the image model's analysis
   ``g_a`` (no gain) of every frame, padded to multiples of 64 as the codec pads, for the real
   clips in ``--data`` (Vimeo-90k septuplets, foreman frames 0-199, carphone 0-79, bikes, Cisco,
   av-metrics; bigbuckbunny is left out, and foreman 200-299 / carphone 80-119 are held out for
   evaluation) plus synthetic camera motion: random pan/zoom/rotation trajectories over
   crops of ``--photos``.
2. Training samples sequences of latent crops at a random quality; the first frame is the
   reference as the image model quantizes it, each later frame is coded by the P-frame model
   from the previous one's rounded latent. Frame pairs for the first ``--pair-frac`` of the
   steps, then unrolled sequences of ``--seq-len`` frames; frame stride 1-3 (augmentation).
   With probability ``--drop-ref`` the reference is zeroed, so the same network also measures
   "no temporal prior" in the ablation (scripts/eval_video.py --ablation). A share ``--static-frac``
   of the sequences repeats one frame (stride 0), since real clips never hold an exact still
   (measured: it did not teach stem-elic-cg to copy; stem-elic-copy's copy gates learnt it;
   docs/benchmarks.md, "A still scene"). ``--init REF`` starts from another video model's weights.
3. The loss is the P-frames' bits per pixel, plus with ``--distortion W`` W x the image model's
   lambda x 255^2 x the pixel MSE estimated from the latent error ``y - ŷ`` (per-channel weights of
   the synthesis, :func:`synthesis_weights`): a copied mean saves bits but reconstructs a still
   element as the reference did, up to half a step away.
4. Checkpoints every ``--checkpoint-every`` steps; rerunning the command resumes exactly.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neuralcodec.errors import CheckpointError, ModelError  # noqa: E402
from neuralcodec.io.files import list_images  # noqa: E402
from neuralcodec.io.video import open_video  # noqa: E402
from neuralcodec.models.manifest import parse_ref  # noqa: E402
from neuralcodec.models.video_weights import export_video_weights, get_video_spec  # noqa: E402
from neuralcodec.models.weights import load_model, load_model_for_digest, load_state  # noqa: E402
from neuralcodec.train.loop import DEFAULT_LAMBDAS, lambda_for_quality, log_seconds, read_checkpoint  # noqa: E402

CHECKPOINT_KEYS = ("model", "opt", "aux_opt", "gen", "step")

# (name, path relative to --data, first frame, end frame or None, open_video kwargs)
TRAIN_CLIPS = [
    ("foreman", "foreman_cif.mp4", 0, 200, {}),
    ("carphone", "carphone_pristine.mp4", 0, 80, {}),
    ("bikes", "bikes.mp4", 0, None, {}),
    ("cisco", "CiscoVT2people_320x192_12fps.yuv", 0, None, {"size": (320, 192), "fps": 12}),
    ("av-metrics", "av-metrics_yuv420p8_input.y4m", 0, None, {}),
]
HELDOUT_CLIPS = [
    ("foreman-heldout", "foreman_cif.mp4", 200, 300, {}),
    ("carphone-heldout", "carphone_pristine.mp4", 80, 120, {}),
]


def pad64(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % 64, 0, -h % 64), mode="replicate")


@torch.no_grad()
def analyse(frames: list[np.ndarray], g_a, batch: int = 8) -> torch.Tensor:
    """Ungained latents (T, M, h, w) float16 of RGB frames, padded as the codec pads."""
    out = []
    for i in range(0, len(frames), batch):
        x = torch.from_numpy(np.stack(frames[i : i + batch])).permute(0, 3, 1, 2).float().div(255)
        out.append(g_a(pad64(x)).half())
    return torch.cat(out)


def read_clip(path: Path, start: int, end: int | None, kw: dict) -> list[np.ndarray]:
    frames = []
    with open_video(path, **kw) as r:
        for i, f in enumerate(r):
            if end is not None and i >= end:
                break
            if i >= start:
                frames.append(f)
    return frames


def synthetic_clip(photo: Path, gen: torch.Generator, frames: int = 7, size: int = 256) -> list[np.ndarray]:
    """A random camera trajectory (pan, zoom, rotation, constant rates) over one photo."""
    from PIL import Image

    img = torch.from_numpy(np.asarray(Image.open(photo).convert("RGB"))).permute(2, 0, 1).float()[None] / 255
    H, W = img.shape[-2:]
    u = lambda lo, hi: lo + (hi - lo) * torch.rand((), generator=gen).item()  # noqa: E731
    scale = min(1.0, 0.8 * min(H, W) / size)  # crop side in units of the shorter image side
    pan = (u(-6, 6) / W * 2, u(-6, 6) / H * 2)
    zoom, rot = u(-0.015, 0.015), math.radians(u(-0.8, 0.8))
    out = []
    for t in range(frames):
        s, a = (size / W) / scale * (1 + zoom) ** t, rot * t
        sy = (size / H) / scale * (1 + zoom) ** t
        theta = torch.tensor([[s * math.cos(a), -sy * math.sin(a), pan[0] * t],
                              [s * math.sin(a), sy * math.cos(a), pan[1] * t]], dtype=torch.float32)[None]
        grid = F.affine_grid(theta, (1, 3, size, size), align_corners=False)
        x = F.grid_sample(img, grid, mode="bicubic", padding_mode="reflection", align_corners=False)
        out.append((x[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy())
    return out


def build_latents(args, path: Path) -> None:
    from safetensors.torch import save_file

    g_a = load_model(args.image_model).model.g_a
    data = Path(args.data)
    clips: dict[str, torch.Tensor] = {}
    t0 = time.time()
    for name, rel, start, end, kw in TRAIN_CLIPS + HELDOUT_CLIPS:
        clips[name] = analyse(read_clip(data / rel, start, end, kw), g_a)
    for seq in sorted((data / "vimeo_septuplet" / "sequences").glob("*/*")):
        clips[f"vimeo-{seq.parent.name}-{seq.name}"] = analyse(read_clip(seq, 0, None, {}), g_a)
    gen = torch.Generator().manual_seed(1234)
    photos = list_images(args.photos)
    for k in range(args.synthetic):
        photo = photos[int(torch.randint(len(photos), (1,), generator=gen))]
        clips[f"synthetic-{k:03d}"] = analyse(synthetic_clip(photo, gen), g_a)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in clips.items()}, str(tmp))
    os.replace(tmp, path)
    print(f"latents of {sum(len(v) for v in clips.values())} frames in {len(clips)} clips, {time.time() - t0:.0f} s")


class Sampler:
    """Random sequences of latent crops (B, L, M, c, c) from the training clips."""

    def __init__(self, clips: dict[str, torch.Tensor], crop: int, static_frac: float = 0.0) -> None:
        self.clips = [v for k, v in sorted(clips.items()) if "heldout" not in k and min(v.shape[-2:]) >= crop]
        self.crop, self.static_frac = crop, static_frac

    def __call__(self, batch: int, length: int, gen: torch.Generator) -> torch.Tensor:
        out = []
        while len(out) < batch:
            clip = self.clips[int(torch.randint(len(self.clips), (1,), generator=gen))]
            still = self.static_frac > 0 and float(torch.rand((), generator=gen)) < self.static_frac
            stride = 0 if still else int(torch.randint(1, 4, (1,), generator=gen))
            span = (length - 1) * stride + 1
            if clip.shape[0] < span:
                continue
            t0 = int(torch.randint(clip.shape[0] - span + 1, (1,), generator=gen))
            i = int(torch.randint(clip.shape[-2] - self.crop + 1, (1,), generator=gen))
            j = int(torch.randint(clip.shape[-1] - self.crop + 1, (1,), generator=gen))
            frames = torch.arange(length) * stride + t0  # stride 0: one frame repeated, a still scene
            out.append(clip[frames, :, i : i + self.crop, j : j + self.crop].float())
        return torch.stack(out)


@torch.no_grad()
def intra_reference(image, y: torch.Tensor) -> torch.Tensor:
    """ŷ of latents ``y`` (B, M, h, w) exactly as an I-frame codes them: the image model's own
    coding passes (its context passes too)."""
    coded = image.compress_latents(y, image.h_a(y), 0.0, reconstruct=False)
    return torch.cat([c.latent for c in coded]).to(y.dtype)


@torch.no_grad()
def synthesis_weights(image, u: torch.Tensor, quality: float = 3.0, step: float = 0.5, seed: int = 0) -> torch.Tensor:
    """(M,) squared pixel error (pixels in [0, 1]) that the image model's synthesis makes per unit
    of error in one latent element of each channel (ungained, as the synthesis sees it): a finite
    difference of ``step`` quantization steps with random signs around the coded latents of
    ``u`` (B, M, h, w, ungained) at ``quality``."""
    g, ig = image.gain(torch.full((u.shape[0],), float(quality)))
    v = torch.round(u * g) * ig
    base = image.g_s(v)
    gen = torch.Generator().manual_seed(seed)
    w = torch.empty(u.shape[1])
    for c in range(u.shape[1]):
        d = torch.zeros_like(v)
        d[:, c] = (torch.randint(0, 2, v[:, c].shape, generator=gen) * 2 - 1) * step * ig[:, c]
        w[c] = (image.g_s(v + d) - base).pow(2).sum() / d[:, c].pow(2).sum()
    return w


def training_weights(image, sampler: Sampler) -> torch.Tensor:
    """The synthesis weights (M,) a ``--distortion`` run prices with: one fixed sample of four
    crops, so that a resumed run computes the same weights."""
    return synthesis_weights(image, sampler(4, 1, torch.Generator().manual_seed(1))[:, 0])


def latent_sse(y: torch.Tensor, y_hat: torch.Tensor, ig: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(B,) squared pixel error that the latent error ``y - y_hat`` (B, M, h, w, gained; ``ig``
    (B, M, 1, 1) the inverse gains) makes, estimated through the synthesis ``weights`` (M,)."""
    return ((y - y_hat) * ig).pow(2).mul(weights[:, None, None]).flatten(1).sum(1)


def sequence_cost(model, image, u: torch.Tensor, quality: torch.Tensor, drop: torch.Tensor,
                  weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Bits of frames 1..L-1 (B, L-1) of ungained latents ``u`` (B, L, M, h, w) and, given the
    synthesis ``weights`` (M,), the estimated squared pixel error of their reconstructions (B, L-1;
    zeros without). Its gradient reaches the means exactly: ``ŷ = round(y - μ) + μ`` moves with
    ``μ`` while the symbol stays (straight-through rounding would cancel it)."""
    g, ig = image.gain(quality)
    y = u * g[:, None]
    y_prev = intra_reference(image, y[:, 0]) * (~drop)[:, None, None, None]
    bits, sse = [], []
    for t in range(1, y.shape[1]):
        out = model(y[:, t], y_prev)
        bits.append(sum((-torch.log2(out[k])).flatten(1).sum(1) for k in ("y_likelihoods", "z_likelihoods")))
        if weights is None:
            sse.append(bits[-1].new_zeros(bits[-1].shape))
        else:
            y_hat = (out["y_hat"] - out["means"]).detach() + out["means"]
            sse.append(latent_sse(y[:, t], y_hat, ig, weights))
        y_prev = out["y_hat"].detach() * (~drop)[:, None, None, None]
    return torch.stack(bits, 1), torch.stack(sse, 1)


def init_from_video(model: torch.nn.Module, ref: str, image_digest: bytes) -> None:
    """Start ``model`` from the shipped weights ``ref`` of another video model (trained on the
    same image weights) wherever the two have the same parameters; the rest keeps its start."""
    from neuralcodec.models.video_weights import load_video_model

    with torch.random.fork_rng():  # building it draws random starts; the run's noise must not depend on that
        start = load_video_model(ref)
    if start.image.digest != image_digest:
        raise ModelError(f"--init {ref} was trained on {start.image.ref}, not on the image weights trained on here "
                         f"(add --image-model {start.image.ref} to train on those)")
    state = start.codec.temporal.state_dict()  # its coding tables too: load_state resizes them
    own, params = model.state_dict(), dict(model.named_parameters())
    if set(state) - set(own) or any(state[k].shape != params[k].shape for k in state if k in params):
        raise ModelError(f"--init {ref}: its parameters are not a subset of {type(model).__name__}'s")
    load_state(model, state, strict=False)
    print(f"started from {ref}; new: {len(set(own) - set(state))} tensors")


def train(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.pt"
    ck = read_checkpoint(ckpt, CHECKPOINT_KEYS) if ckpt.exists() else None  # a bad one stops before the latents are built
    loaded = load_model(args.image_model)
    if ck is not None and ck.get("image_sha256", loaded.digest.hex()) != loaded.digest.hex():
        raise CheckpointError(f"{ckpt} was trained on other weights of {args.image_model} "
                              f"({ck['image_sha256'][:12]}, not {loaded.ref}'s {loaded.digest.hex()[:12]}): "
                              f"name that version with --image-model ID@N")
    image = loaded.model.eval().requires_grad_(False)
    torch.manual_seed(args.seed)
    model = get_video_spec(args.model).build()
    model.init_from_image(image)
    if args.init and ck is None:  # a bad --init stops before the latents are built
        init_from_video(model, args.init, loaded.digest)
    lat_path = Path(args.latents) if args.latents else out.parent / f"latents-{loaded.ref}.safetensors"
    if not lat_path.exists():
        build_latents(args, lat_path)
    from safetensors.torch import load_file

    sampler = Sampler(load_file(str(lat_path)), args.crop, args.static_frac)
    lo, hi = loaded.quality_range
    weights = None
    if args.distortion:
        weights = training_weights(image, sampler)
    aux = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    main = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    opt = torch.optim.Adam(main, lr=args.lr)
    aux_opt = torch.optim.Adam(aux, lr=1e-3)
    gen = torch.Generator().manual_seed(args.seed)
    step = 0
    if ck is not None:
        load_state(model, ck["model"])  # resizes coding tables an --init start carries
        opt.load_state_dict(ck["opt"])
        aux_opt.load_state_dict(ck["aux_opt"])
        gen.set_state(ck["gen"])
        if "rng" in ck:  # global RNG: the noise of the rate proxy
            torch.set_rng_state(ck["rng"])
        step = int(ck["step"])
        print(f"resumed at step {step}")
    pixels = (args.crop * 16) ** 2
    log = open(out / "log.jsonl", "a")
    t0, run = time.time(), []
    model.train()
    stop = min(args.steps, args.stop_at) if args.stop_at else args.steps
    while step < stop:
        for grp in opt.param_groups:
            grp["lr"] = args.lr * (0.1 if step >= args.decay_at * args.steps else 1.0)
        length = 2 if step < args.pair_frac * args.steps else args.seq_len
        u = sampler(args.batch, length, gen)
        quality = lo + (hi - lo) * torch.rand(args.batch, generator=gen)
        drop = torch.rand(args.batch, generator=gen) < args.drop_ref
        bits, sse = sequence_cost(model, image, u, quality, drop, weights)
        bpp, mse = bits / pixels, sse / (3 * pixels)
        lam = args.distortion * lambda_for_quality(quality, DEFAULT_LAMBDAS)[:, None]
        loss = (bpp + lam * 255**2 * mse).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(main, 1.0)
        opt.step()
        aux_loss = model.entropy_bottleneck.loss()
        aux_opt.zero_grad()
        aux_loss.backward()
        aux_opt.step()
        step += 1
        keep = ~drop
        run.append((float(bpp.detach().mean()), float(bpp.detach()[keep].mean()) if keep.any() else float("nan"),
                    float(loss.detach()), float(mse.detach().mean())))
        if step % args.log_every == 0:
            rec = {"step": step, "bpp": float(np.mean([r[0] for r in run])), "bpp_with_ref": float(np.nanmean([r[1] for r in run])),
                   **({"loss": float(np.mean([r[2] for r in run])), "mse_est": float(np.mean([r[3] for r in run]))}
                      if weights is not None else {}),
                   "len": length, "aux": float(aux_loss.detach()), "sec": round(time.time() - t0, 1)}
            print(json.dumps(rec), flush=True)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            run = []
        if step % args.checkpoint_every == 0 or step == stop:
            state = {"model": model.state_dict(), "opt": opt.state_dict(), "aux_opt": aux_opt.state_dict(),
                     "gen": gen.get_state(), "rng": torch.get_rng_state(), "step": step,
                     "image_sha256": loaded.digest.hex()}
            tmp = ckpt.with_suffix(".tmp")
            torch.save(state, tmp)
            os.replace(tmp, ckpt)
    if step == args.steps:
        (out / "config.json").write_text(json.dumps(vars(args), indent=2))


def export(args) -> None:
    out = Path(args.out)
    ck = read_checkpoint(out / "checkpoint.pt", CHECKPOINT_KEYS)
    model = get_video_spec(args.model).build()
    load_state(model, ck["model"])  # resizes coding tables an --init start carries
    cfg = json.loads((out / "config.json").read_text()) if (out / "config.json").exists() else vars(args)
    info = {"training": {
        "steps": int(ck["step"]), "batch": cfg["batch"], "crop_latent": cfg["crop"], "seq_len": cfg["seq_len"],
        "pair_frac": cfg["pair_frac"], "drop_ref": cfg["drop_ref"], "static_frac": cfg.get("static_frac", 0.0), "lr": cfg["lr"],
        "data": "shared video clips (foreman 0-199, carphone 0-79, bikes, Cisco, av-metrics, Vimeo-90k sample) "
                f"+ {cfg['synthetic']} synthetic camera-motion clips",
        "command": f"python scripts/train_video.py --model {args.model} --out {args.out} --steps {ck['step']} "
                   f"--seq-len {cfg['seq_len']} --pair-frac {cfg['pair_frac']} --static-frac {cfg.get('static_frac', 0.0)} "
                   f"--lr {cfg['lr']} --decay-at {cfg['decay_at']}" + (f" --init {cfg['init']}" if cfg.get("init") else "")
                   + (f" --distortion {cfg['distortion']:g}" if cfg.get("distortion") else ""),
        "init": f"{cfg['init']}'s weights; the parameters it lacks start where they change nothing" if cfg.get("init") else
                f"the image model's entropy model ({type(model).__name__}.init_from_image)",
        "loss": "bits of the coded symbols (straight-through rounding) + noisy hyper-latent bits"
                + (f" + {cfg['distortion']:g} x the image model's lambda x 255^2 x MSE estimated from the latent error"
                   if cfg.get("distortion") else " (rate only)"),
        "hardware": f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), torch {torch.__version__}",
        "wall_seconds": round(log_seconds(out / "log.jsonl") or 0.0, 1),
    }}
    image = load_model_for_digest(parse_ref(args.image_model)[0], bytes.fromhex(ck["image_sha256"])) \
        if "image_sha256" in ck else load_model(args.image_model)  # the version it was trained on
    path = export_video_weights(model, args.model, image, info)
    print(f"wrote {path}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="stem-msh")
    p.add_argument("--image-model", default="", help="default: the video model's (its newest version)")
    p.add_argument("--out", default="", help="default: runs/video/<model>")
    p.add_argument("--data", default="../shared/data/video")
    p.add_argument("--photos", default="../shared/data/train")
    p.add_argument("--latents", default="", help="latent cache (default <out>/../latents-<image model>@<version>.safetensors)")
    p.add_argument("--synthetic", type=int, default=64, help="synthetic camera-motion clips (7 frames each)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=12, help="latent crop side (pixels / 16)")
    p.add_argument("--seq-len", type=int, default=4)
    p.add_argument("--pair-frac", type=float, default=0.5)
    p.add_argument("--drop-ref", type=float, default=0.1)
    p.add_argument("--static-frac", type=float, default=0.0, help="share of sequences that repeat one frame (a still scene)")
    p.add_argument("--init", default="", help="start from this shipped video model version's weights (e.g. stem-elic-cg@1) "
                   "where the parameters match; the rest start as without --init")
    p.add_argument("--distortion", type=float, default=0.0,
                   help="weight of the reconstruction error (1: the image models' training lambdas, "
                   "train.loop.DEFAULT_LAMBDAS, at each quality; 0: rate only)")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--decay-at", type=float, default=0.85)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--stop-at", type=int, default=0, help="stop (with a checkpoint) at this step; rerun to continue")
    p.add_argument("--export", action="store_true", help="export the checkpoint's weights and stop")
    args = p.parse_args(argv)
    if args.distortion < 0:
        p.error("--distortion must be 0 (rate only) or positive")
    args.image_model = args.image_model or get_video_spec(args.model).image_model
    args.out = args.out or f"runs/video/{args.model}"
    return args


def main() -> None:
    try:
        args = parse_args()
        if args.export:
            export(args)
        else:
            train(args)
    except (CheckpointError, ModelError) as e:
        raise SystemExit(f"train_video: {e}")


if __name__ == "__main__":
    main()
