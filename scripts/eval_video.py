"""Video rate-distortion and speed: our video model vs itself all-intra vs libx264/libx265.

    nice -n 10 python scripts/eval_video.py --out runs/video/eval            # RD + BD-rates + plots
    nice -n 10 python scripts/eval_video.py --ablation                       # temporal prior ablation
    python scripts/eval_video.py --speed --threads 2 [--hd]                  # fps at 416x240 [1280x720]

Clips: frames the video model never saw in training (foreman 200-263, carphone 80-119), read
through the same PyAV path as ``ncodec encode`` and kept as lossless RGB. bpp counts whole files
(.ncv, or .mp4 for x264/x265); PSNR is RGB PSNR averaged over frames. x264/x265 get the same RGB
frames converted to yuv420p (BT.601, limited), preset medium, ``-tune zerolatency``, the same
GOP, no B-frames, CRF swept.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neuralcodec.io.video import VideoWriter, open_video  # noqa: E402
from neuralcodec.metrics import bd_rate, psnr  # noqa: E402
from neuralcodec.models.video_weights import load_video_model  # noqa: E402
from neuralcodec.video import decode_video, encode_video  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"
CLIPS = {  # name: (file, first frame, frames)
    "foreman-200": ("foreman_cif.mp4", 200, 64),
    "carphone-80": ("carphone_pristine.mp4", 80, 40),
}


def read_frames(path: Path, start: int, n: int) -> list[np.ndarray]:
    out = []
    with open_video(path) as r:
        for i, f in enumerate(r):
            if i >= start + n:
                break
            if i >= start:
                out.append(f)
    return out


def ours(frames, tmp: Path, model: str, quality: float, gop: int) -> dict:
    src = tmp / "src"
    if not src.exists():
        src.mkdir()
        from PIL import Image

        for i, f in enumerate(frames):
            Image.fromarray(f).save(src / f"{i + 1:06d}.png")
    out = tmp / "o.ncv"
    enc = encode_video(src, out, model, quality, gop)
    dec = [d.rgb for d in decode_video(out)]
    intra = enc.intra
    return {"quality": quality, "gop": gop, "bpp": enc.bpp,
            "psnr": float(np.mean([psnr(a, b) for a, b in zip(frames, dec)])),
            "bytes_i": float(np.mean([s for s, t in zip(enc.frame_sizes, intra) if t])),
            "bytes_p": float(np.mean([s for s, t in zip(enc.frame_sizes, intra) if not t])) if not all(intra) else None,
            "frame_bytes": enc.frame_sizes}


def x26x(frames, tmp: Path, codec: str, crf: int, gop: int, preset: str = "medium") -> dict:
    import av

    h, w = frames[0].shape[:2]
    path = tmp / f"{codec}.mp4"
    with av.open(str(path), "w") as c:
        params = "keyint={g}:min-keyint={g}:scenecut=0:bframes=0".format(g=gop)
        opts = {"crf": str(crf), "preset": preset, "tune": "zerolatency"}
        opts["x264-params" if codec == "libx264" else "x265-params"] = params + (":log-level=error" if codec == "libx265" else "")
        s = c.add_stream(codec, rate=25, options=opts)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i, f in enumerate(frames):
            fr = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(
                format="yuv420p", src_colorspace="ITU601", dst_colorspace="ITU601",
                src_color_range="JPEG", dst_color_range="MPEG", threads=1)
            fr.pts = i
            for p in s.encode(fr):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    with open_video(path) as r:
        dec = list(r)
    return {"crf": crf, "gop": gop, "bpp": path.stat().st_size * 8 / (len(frames) * h * w),
            "psnr": float(np.mean([psnr(a, b) for a, b in zip(frames, dec)]))}


def bd(a: list[dict], b: list[dict]) -> float:
    """BD-rate of curve b against curve a (negative: b needs fewer bits)."""
    return bd_rate([p["bpp"] for p in a], [p["psnr"] for p in a], [p["bpp"] for p in b], [p["psnr"] for p in b])


def rd(args) -> None:
    loaded = load_video_model(args.model)
    lo, hi = loaded.quality_range
    qualities = args.qualities or list(np.linspace(lo, hi, 4).round(3))
    results = {}
    for name, (file, start, n) in CLIPS.items():
        frames = read_frames(DATA / file, start, n)[: args.frames or None]
        res = {}
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            res["ours"] = [ours(frames, tmp, args.model, q, args.gop) for q in qualities]
            res["ours-gop1"] = [ours(frames, tmp, args.model, q, 1) for q in qualities]
            for codec in ("libx264", "libx265"):
                res[codec] = [x26x(frames, tmp, codec, crf, args.gop) for crf in args.crfs]
        res["bd"] = {"ours vs ours-gop1": bd(res["ours-gop1"], res["ours"]),
                     "ours vs libx264": bd(res["libx264"], res["ours"]),
                     "ours vs libx265": bd(res["libx265"], res["ours"]),
                     "ours-gop1 vs libx264": bd(res["libx264"], res["ours-gop1"])}
        results[name] = res
        print(name, json.dumps(res["bd"]), flush=True)
        for k in ("ours", "ours-gop1", "libx264", "libx265"):
            for p in res[k]:
                print(f"  {k:<10} {p.get('quality', p.get('crf'))!s:<6} {p['bpp']:.4f} bpp {p['psnr']:.2f} dB", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rd.json").write_text(json.dumps(results, indent=2))
    plot(results, out)


def plot(results: dict, out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plots")
        return
    fig, axes = plt.subplots(2, len(results), figsize=(6 * len(results), 8), squeeze=False)
    for j, (name, res) in enumerate(results.items()):
        ax = axes[0][j]
        for k in ("ours", "ours-gop1", "libx264", "libx265"):
            ax.plot([p["bpp"] for p in res[k]], [p["psnr"] for p in res[k]], "o-", label=k)
        ax.set(title=name, xlabel="bpp", ylabel="RGB PSNR (dB)", xscale="log")
        ax.legend()
        ax = axes[1][j]
        mid = res["ours"][len(res["ours"]) // 2]
        ax.bar(range(len(mid["frame_bytes"])), [b * 8 / 1000 for b in mid["frame_bytes"]])
        ax.set(title=f"{name}: kbit per frame (quality {mid['quality']}, I-frames tall)", xlabel="frame", ylabel="kbit")
    fig.tight_layout()
    fig.savefig(out / "video_rd.png", dpi=100)
    print(f"wrote {out / 'video_rd.png'}")


@torch.no_grad()
def ablation(args) -> None:
    """Bytes of P-frames coded (a) as images, (b) by the P-frame net with ŷ(t-1) zeroed,
    (c) by the P-frame net with ŷ(t-1): same transforms, same latents, real coding."""
    import torch.nn.functional as F

    loaded = load_video_model(args.model)
    codec = loaded.codec
    q = args.quality if args.quality is not None else loaded.default_quality
    rows = {}
    for name, (file, start, n) in CLIPS.items():
        frames = read_frames(DATA / file, start, n)[: args.frames or None]
        x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div(255)
        h, w = x.shape[-2:]
        x = F.pad(x, (0, -w % 64, 0, -h % 64), mode="replicate")
        y = torch.cat([codec.analysis(x[i : i + 8], q) for i in range(0, len(x), 8)])
        totals = {"image": 0, "no-ref": 0, "temporal": 0}
        ref = codec.encode(y[:1], None).y_hat
        for t in range(1, len(y)):
            totals["image"] += sum(map(len, codec.encode(y[t : t + 1], None).sections))
            totals["no-ref"] += sum(map(len, codec.encode(y[t : t + 1], torch.zeros_like(ref)).sections))
            code = codec.encode(y[t : t + 1], ref)
            totals["temporal"] += sum(map(len, code.sections))
            ref = code.y_hat
        px = (len(y) - 1) * h * w
        rows[name] = {k: v * 8 / px for k, v in totals.items()}
        r = rows[name]
        print(f"{name} quality {q:g}, {len(y) - 1} P-frames, section bits per pixel: image model {r['image']:.4f}, "
              f"P-net without ref {r['no-ref']:.4f} ({100 * (r['no-ref'] / r['image'] - 1):+.1f} %), "
              f"with temporal prior {r['temporal']:.4f} ({100 * (r['temporal'] / r['image'] - 1):+.1f} %)", flush=True)


def speed(args) -> None:
    """Encode and decode fps at 416x240 (a crop of bikes.mp4, 30 frames) or, with --hd, 1280x720
    (bigbuckbunny.mp4, 12 frames), whole pipeline."""
    torch.set_num_threads(args.threads)
    if args.hd:  # speed only: bigbuckbunny is animation, never used for RD
        frames = read_frames(DATA / "bigbuckbunny.mp4", 0, 12)
    else:
        frames = [f[16:256, 100:516] for f in read_frames(DATA / "bikes.mp4", 0, 30)]
    h, w = frames[0].shape[:2]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with VideoWriter(tmp / "src.mkv", w, h, 25) as wr:
            for f in frames:
                wr.write(f)
        load_video_model(args.model)
        encode_video(tmp / "src.mkv", tmp / "w.ncv", args.model, args.quality, 2, frames=4)  # warm-up: kernels, tables
        list(decode_video(tmp / "w.ncv"))
        for gop in (args.gop, 1, args.gop):
            t0 = time.perf_counter()
            encode_video(tmp / "src.mkv", tmp / "o.ncv", args.model, args.quality, gop)
            t1 = time.perf_counter()
            with VideoWriter(tmp / "o.mkv", w, h, 25) as wr:
                for d in decode_video(tmp / "o.ncv"):
                    wr.write(d.rgb)
            t2 = time.perf_counter()
            print(f"{w}x{h}, {len(frames)} frames, GOP {gop}, {args.threads} thread(s): encode {len(frames) / (t1 - t0):.1f} fps, "
                  f"decode {len(frames) / (t2 - t1):.1f} fps (.mkv source to .ncv, .ncv to FFV1 .mkv)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="stem-msh")
    p.add_argument("--gop", type=int, default=32)
    p.add_argument("--qualities", type=float, nargs="+")
    p.add_argument("--quality", type=float, help="ablation/speed quality (default: the model's default)")
    p.add_argument("--crfs", type=int, nargs="+", default=[28, 33, 38, 43])
    p.add_argument("--frames", type=int, default=0, help="use only the first N frames of each clip")
    p.add_argument("--out", default="runs/video/eval")
    p.add_argument("--ablation", action="store_true")
    p.add_argument("--speed", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--hd", action="store_true", help="speed at 1280x720")
    args = p.parse_args()
    if args.ablation:
        ablation(args)
    elif args.speed:
        speed(args)
    else:
        rd(args)


if __name__ == "__main__":
    main()
