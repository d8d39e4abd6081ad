"""Video rate-distortion and speed: our video model vs itself all-intra vs libx264/libx265/SVT-AV1.

    nice -n 10 python scripts/eval_video.py --frames 32 --qualities 0 0.875 1.75 --out runs/video/rd
        # RD, BD-rates, plots; [--clips foreman-200 ...]: those clips only, added to <out>/rd.json
    python scripts/eval_video.py --model stem-elic --baseline-model stem-msh --refs libx264-medium --clips foreman-200
        # one video model against another (and only the references named)
    nice -n 10 python scripts/eval_video.py --ablation [--qualities 0 1 1.75]   # temporal prior ablation
    python scripts/eval_video.py --speed --threads 2 [--hd]                     # fps at 416x240 [1280x720]
    python scripts/eval_video.py --model stem-elic --compare-scenecut --refs --clips foreman-200
        # scene cuts on (default) against the same GOP without them
    nice -n 10 python scripts/eval_video.py --profile                           # where 720p decode time goes

Clips: frames the video model never saw in training (foreman 200-263 and 264-299, carphone
80-119; scripts/train_video.py holds them out), read through the same PyAV path as ``ncodec
encode`` and kept as lossless RGB. bpp counts whole files (.ncv, or .mp4 for the references);
PSNR and MS-SSIM are RGB, averaged over frames (MS-SSIM: NaN for frames 160 pixels or less on a
side, too small for its five scales). The references get the same RGB frames converted to
yuv420p (BT.601, limited): libx264 and libx265 at presets medium and veryslow with ``-tune
zerolatency``, SVT-AV1 (when this FFmpeg build has ``libsvtav1``) with its low-delay prediction
structure; all with the same GOP, no B-frames or frame reordering, CRF swept. Scene cuts (an
I-frame wherever it is cheaper) are on in ours and in the references' own detection, as each
encoder's default; ``--no-scenecut`` turns them off in all (fixed GOP, format 1.0 for ours).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neuralcodec.io.video import VideoWriter, open_video  # noqa: E402
from neuralcodec.metrics import bd_rate, ms_ssim, psnr  # noqa: E402
from neuralcodec.models.video_weights import load_video_model  # noqa: E402
from neuralcodec.video import decode_video, encode_video  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"
CLIPS = {  # name: (file, first frame, frames); all held out of training (scripts/train_video.py)
    "foreman-200": ("foreman_cif.mp4", 200, 64),
    "carphone-80": ("carphone_pristine.mp4", 80, 40),
    "foreman-264": ("foreman_cif.mp4", 264, 36),
}
OURS = ("ours", "ours-gop1", "baseline")


def read_frames(path: Path, start: int, n: int) -> list[np.ndarray]:
    out = []
    with open_video(path) as r:
        for i, f in enumerate(r):
            if i >= start + n:
                break
            if i >= start:
                out.append(f)
    return out


def distortion(frames: list[np.ndarray], decoded: list[np.ndarray]) -> dict:
    """RGB PSNR and MS-SSIM averaged over frames; ``msssim_db`` = -10 log10(1 - MS-SSIM)."""
    assert len(decoded) == len(frames), (len(decoded), len(frames))
    m = float(np.mean([ms_ssim(a, b) for a, b in zip(frames, decoded)]))
    return {"psnr": float(np.mean([psnr(a, b) for a, b in zip(frames, decoded)])), "msssim": m,
            "msssim_db": float(-10 * np.log10(1 - m)) if m < 1 else float("nan")}


def ours(frames, tmp: Path, model: str, quality: float, gop: int, scene_cuts: bool = True) -> dict:
    src = tmp / "src"
    if not src.exists():
        src.mkdir()
        from PIL import Image

        for i, f in enumerate(frames):
            Image.fromarray(f).save(src / f"{i + 1:06d}.png")
    out = tmp / "o.ncv"
    enc = encode_video(src, out, model, quality, gop, scene_cuts=scene_cuts)
    dec = [d.rgb for d in decode_video(out)]
    intra = enc.intra
    return {"quality": quality, "gop": gop, "bpp": enc.bpp, **distortion(frames, dec),
            "bytes_i": float(np.mean([s for s, t in zip(enc.frame_sizes, intra) if t])),
            "bytes_p": float(np.mean([s for s, t in zip(enc.frame_sizes, intra) if not t])) if not all(intra) else None,
            "frame_bytes": enc.frame_sizes, "frame_intra": intra}


def reference_options(codec: str, crf: int, gop: int, preset: str, scene_cuts: bool = False) -> dict:
    """Encoder options: GOP ``gop`` (0: only the first frame intra), no B-frames; scene cuts (extra
    I-frames) only with ``scene_cuts``, as ours."""
    g = gop or 1 << 20
    if codec == "libsvtav1":  # pred-struct 1: low delay (no reordering); scd: scene-change detection
        return {"crf": str(crf), "preset": preset, "svtav1-params": f"keyint={g}:pred-struct=1:scd={int(scene_cuts)}"}
    params = f"keyint={g}:bframes=0" if scene_cuts else f"keyint={g}:min-keyint={g}:scenecut=0:bframes=0"
    key = "x264-params" if codec == "libx264" else "x265-params"
    return {"crf": str(crf), "preset": preset, "tune": "zerolatency",
            key: params + (":log-level=error" if codec == "libx265" else "")}


def reference(frames, tmp: Path, codec: str, crf: int, gop: int, preset: str = "medium", scene_cuts: bool = False) -> dict:
    """Code RGB frames with an FFmpeg encoder into ``<tmp>/<codec>.mp4``; bpp from the file size."""
    import av

    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1: errors only
    h, w = frames[0].shape[:2]
    path = tmp / f"{codec}.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=25, options=reference_options(codec, crf, gop, preset, scene_cuts))
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
    return {"crf": crf, "gop": gop, "preset": preset, "bpp": path.stat().st_size * 8 / (len(frames) * h * w),
            **distortion(frames, dec)}


def references(args) -> list[tuple[str, str, str, list[int]]]:
    """(label, codec, preset, CRFs) of the reference encoders this run compares with."""
    import av

    refs = [(f"{c}-{p}", c, p, crfs) for c in ("libx264", "libx265")
            for p, crfs in (("medium", args.crfs), ("veryslow", args.slow_crfs or args.crfs))]
    if "libsvtav1" in av.codecs_available:
        refs.append((f"libsvtav1-p{args.av1_preset}", "libsvtav1", str(args.av1_preset), args.av1_crfs))
    else:
        print("this FFmpeg build has no libsvtav1: no AV1 reference", flush=True)
    return refs


def bd(a: list[dict], b: list[dict], metric: str = "psnr") -> float:
    """BD-rate of curve b against curve a on ``metric`` ("psnr" or "msssim_db"; negative: b needs fewer bits)."""
    return bd_rate([p["bpp"] for p in a], [p[metric] for p in a], [p["bpp"] for p in b], [p[metric] for p in b])


def bd_table(res: dict) -> dict:
    """BD-rates (PSNR and MS-SSIM) of ours vs all-intra and vs every reference, all-intra vs x264."""
    pairs = [(k, "ours") for k in res if k != "ours"]  # all-intra, the baseline model, the references
    pairs += [(k, "ours-gop1") for k in res if k.startswith("libx264-")]
    return {f"{b} vs {a}": {m: bd(res[a], res[b], m) for m in ("psnr", "msssim_db")} for a, b in pairs}


def rd(args) -> None:
    loaded = load_video_model(args.model)
    lo, hi = loaded.quality_range
    qualities = args.qualities or list(np.linspace(lo, hi, 4).round(3))
    refs = [r for r in references(args) if args.refs is None or r[0] in args.refs]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.clips:
        file, start, n = CLIPS[name]
        frames = read_frames(DATA / file, start, n)[: args.frames or None]
        res = {}
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            res["ours"] = [ours(frames, tmp, args.model, q, args.gop, args.scenecut) for q in qualities]
            res["ours-gop1"] = [ours(frames, tmp, args.model, q, 1) for q in qualities]
            if args.scenecut and args.compare_scenecut:  # the same GOP without scene cuts
                res["ours-no-scenecut"] = [ours(frames, tmp, args.model, q, args.gop, False) for q in qualities]
            if args.baseline_model:  # another video model, same GOP: BD-rate "ours vs baseline"
                res["baseline"] = [ours(frames, tmp, args.baseline_model, q, args.gop, args.scenecut)
                                   for q in args.baseline_qualities or qualities]
            for label, codec, preset, crfs in refs:
                res[label] = [reference(frames, tmp, codec, crf, args.gop, preset, args.scenecut) for crf in crfs]
        results[name] = {"frames": len(frames), "curves": res, "bd": bd_table(res)}
        print(f"{name}: {len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
        for k, pts in res.items():
            for p in pts:
                print(f"  {k:<18} {p.get('quality', p.get('crf'))!s:<6} {p['bpp']:.4f} bpp {p['psnr']:.2f} dB "
                      f"MS-SSIM {p['msssim']:.4f}", flush=True)
        for k, v in results[name]["bd"].items():
            print(f"  BD-rate {k:<34} PSNR {v['psnr']:+7.1f} %  MS-SSIM {v['msssim_db']:+7.1f} %", flush=True)
    saved = out / "rd.json"  # results of other clips (earlier runs with --clips) are kept
    results = {**(json.loads(saved.read_text()) if saved.exists() else {}), **results}
    tmp = saved.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, saved)
    plot({k: results[k] for k in CLIPS if k in results}, out)


def plot(results: dict, out: Path) -> None:
    """RD curves (PSNR, MS-SSIM) and bits per frame (I-frames red, P-frames blue) per clip."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        print("matplotlib not installed: no plots")
        return
    fig, axes = plt.subplots(3, len(results), figsize=(6 * len(results), 12), squeeze=False)
    for j, (name, r) in enumerate(results.items()):
        res = r["curves"]
        for row, (metric, label) in enumerate((("psnr", "RGB PSNR (dB)"), ("msssim_db", "RGB MS-SSIM (dB)"))):
            ax = axes[row][j]
            for k, pts in res.items():
                ax.plot([p["bpp"] for p in pts], [p[metric] for p in pts], "o-" if k in OURS else ".--", label=k)
            ax.set(title=name, xlabel="bpp", ylabel=label, xscale="log")
            ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(
                lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))
            if not any(np.isfinite(p[metric]) for pts in res.values() for p in pts):
                ax.set_title(f"{name}: {label} n/a (frames too small)")
            ax.legend(fontsize=7)
        ax = axes[2][j]
        mid = res["ours"][len(res["ours"]) // 2]
        colors = ["tab:red" if t else "tab:blue" for t in mid["frame_intra"]]
        ax.bar(range(len(mid["frame_bytes"])), [b * 8 / 1000 for b in mid["frame_bytes"]], color=colors)
        ax.set(title=f"{name}: kbit per frame, quality {mid['quality']} (red I, blue P)", xlabel="frame", ylabel="kbit")
    fig.tight_layout()
    fig.savefig(out / "video_rd.png", dpi=100)
    print(f"wrote {out / 'video_rd.png'}")


@torch.no_grad()
def ablation(args) -> None:
    """Bytes of P-frames coded (a) as images, (b) by the P-frame net with ŷ(t-1) zeroed,
    (c) by the P-frame net with ŷ(t-1): same transforms, same latents, real coding; at each quality."""
    import torch.nn.functional as F

    loaded = load_video_model(args.model)
    codec = loaded.codec
    qualities = args.qualities or [args.quality if args.quality is not None else loaded.default_quality]
    for name in args.clips:
        file, start, n = CLIPS[name]
        frames = read_frames(DATA / file, start, n)[: args.frames or None]
        x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div(255)
        h, w = x.shape[-2:]
        x = F.pad(x, (0, -w % 64, 0, -h % 64), mode="replicate")
        for q in qualities:
            y = torch.cat([codec.analysis(x[i : i + 8], q) for i in range(0, len(x), 8)])
            totals = {"image": 0, "no-ref": 0, "temporal": 0}
            ref = codec.encode(y[:1], None).y_hat
            for t in range(1, len(y)):
                totals["image"] += sum(map(len, codec.encode(y[t : t + 1], None).sections))
                totals["no-ref"] += sum(map(len, codec.encode(y[t : t + 1], torch.zeros_like(ref)).sections))
                code = codec.encode(y[t : t + 1], ref)
                totals["temporal"] += sum(map(len, code.sections))
                ref = code.y_hat
            r = {k: v * 8 / ((len(y) - 1) * h * w) for k, v in totals.items()}
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
            encode_video(tmp / "src.mkv", tmp / "o.ncv", args.model, args.quality, gop, scene_cuts=args.scenecut)
            t1 = time.perf_counter()
            with VideoWriter(tmp / "o.mkv", w, h, 25) as wr:
                for d in decode_video(tmp / "o.ncv"):
                    wr.write(d.rgb)
            t2 = time.perf_counter()
            print(f"{w}x{h}, {len(frames)} frames, GOP {gop}, {args.threads} thread(s): encode {len(frames) / (t1 - t0):.1f} fps, "
                  f"decode {len(frames) / (t2 - t1):.1f} fps (.mkv source to .ncv, .ncv to FFV1 .mkv)", flush=True)


@torch.no_grad()
def profile(args) -> None:
    """Where the time of one 1280x720 P-frame decode goes (1 thread unless --threads): cProfile
    of ``--frames`` P-frames (default 3) after an I-frame, in CPU seconds of this process, then
    torch.profiler's top operators (wall clock) for one more P-frame."""
    import cProfile
    import pstats

    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from neuralcodec.video import VideoDecoder

    torch.set_num_threads(args.threads)
    n = args.frames or 3
    frames = read_frames(DATA / "bigbuckbunny.mp4", 0, n + 2)
    with tempfile.TemporaryDirectory() as tmp:
        src, coded = Path(tmp) / "src.mkv", Path(tmp) / "o.ncv"
        with VideoWriter(src, 1280, 720, 25) as wr:
            for f in frames:
                wr.write(f)
        encode_video(src, coded, args.model, args.quality, 32, scene_cuts=False)  # P-frames only after the first
        with VideoDecoder(coded) as dec:
            records = list(dec.reader.records(0))
            dec._rgb(dec._latent(records[0]), records[0])  # the I-frame, and warm-up
            prof = cProfile.Profile(time.process_time)  # CPU time: robust to other jobs on the machine
            t0 = time.process_time()
            prof.enable()
            for r in records[1 : n + 1]:
                dec._rgb(dec._latent(r), r)
            prof.disable()
            total = (time.process_time() - t0) / n
            with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as tp:
                r = records[n + 1]
                dec._rgb(dec._latent(r), r)
    stats = pstats.Stats(prof).stats
    parts = [  # (label, file suffix, function): cumulative time per frame
        ("entropy decoding of the latent", "video.py", "_latent"),
        ("  float64 parameter nets: temporal prior + hyper-synthesis", "stem.py", "features"),
        ("  float64 parameter nets: spatial context + fusion (2 passes)", "stem.py", "forward"),
        ("  entropy coder (z, then 2 Gaussian passes)", "stages.py", "decode"),
        ("  scale/mean quantization (2 passes)", "stages.py", "parameters"),
        ("synthesis and 8-bit output", "video.py", "_rgb"),
        ("  synthesis transform g_s (float32)", "base.py", "_synthesize_one"),
        ("    of which inverse GDN", "layers.py", "forward"),
        ("  to uint8 and crop", "", "to_uint8"),
        ("  image digest (BLAKE2b)", "codec.py", "image_digest"),
    ]
    print(f"1280x720 P-frame decode, {args.threads} thread(s), {n} frames: {total:.3f} CPU s per frame")
    for label, suffix, func in parts:
        hits = [(v[1], v[3]) for k, v in stats.items() if k[2] == func and k[0].endswith(suffix)]
        calls, cum = sum(h[0] for h in hits), sum(h[1] for h in hits)
        print(f"  {label:<64} {cum / n:7.3f} s  {100 * cum / n / total:5.1f} %  ({calls / n:g} calls)")
    print(tp.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=15,
                                                           max_name_column_width=32, max_shapes_column_width=70))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="stem-msh")
    p.add_argument("--gop", type=int, default=32)
    p.add_argument("--no-scenecut", dest="scenecut", action="store_false",
                   help="ours and the references keep the GOP's frame types (default: scene cuts on in all)")
    p.add_argument("--compare-scenecut", action="store_true", help="also code ours without scene cuts (BD-rate row)")
    p.add_argument("--qualities", type=float, nargs="+", help="RD and ablation qualities")
    p.add_argument("--quality", type=float, help="ablation/speed quality (default: the model's default)")
    p.add_argument("--crfs", type=int, nargs="+", default=[32, 36, 40, 44], help="x264/x265 CRFs, preset medium")
    p.add_argument("--slow-crfs", type=int, nargs="+", help="x264/x265 CRFs at preset veryslow (default: --crfs)")
    p.add_argument("--av1-crfs", type=int, nargs="+", default=[51, 55, 59, 63], help="SVT-AV1 CRFs")
    p.add_argument("--av1-preset", type=int, default=4, help="SVT-AV1 preset (0 slowest .. 13 fastest)")
    p.add_argument("--clips", nargs="+", choices=list(CLIPS), default=list(CLIPS), help="RD and ablation clips")
    p.add_argument("--refs", nargs="*", help="only these references, e.g. libx264-medium libx265-medium (none: no reference)")
    p.add_argument("--baseline-model", help="also code the clips with this video model (same GOP) and compare")
    p.add_argument("--baseline-qualities", type=float, nargs="+", help="its qualities (default: --qualities)")
    p.add_argument("--frames", type=int, default=0, help="use only the first N frames of each clip")
    p.add_argument("--out", default="runs/video/rd")
    p.add_argument("--ablation", action="store_true")
    p.add_argument("--speed", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--hd", action="store_true", help="speed at 1280x720")
    p.add_argument("--profile", action="store_true", help="where a 1280x720 P-frame decode spends its time")
    args = p.parse_args()
    if args.ablation:
        ablation(args)
    elif args.speed:
        speed(args)
    elif args.profile:
        profile(args)
    else:
        rd(args)


if __name__ == "__main__":
    main()
