"""Video commands of ``ncodec`` (``.ncv``): encode, decode, info and the video part of models.

``neuralcodec.cli`` dispatches here by extension; torch and PyAV are imported inside commands.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

from .errors import InputError, NeuralCodecError

NCV_SUFFIX = ".ncv"
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".webm", ".avi", ".y4m", ".yuv"}


def wants_video_encode(args: argparse.Namespace) -> bool:
    """Video if an input has a video suffix, the output ends in .ncv or --frames-from-folder is given."""
    return (any(Path(s).suffix.lower() in VIDEO_SUFFIXES for s in args.inputs)
            or str(args.output or "").lower().endswith(NCV_SUFFIX) or getattr(args, "frames_from_folder", False))


def wants_video_decode(args: argparse.Namespace) -> bool:
    return any(str(s).lower().endswith(NCV_SUFFIX) for s in args.inputs)


def add_encode_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("video (inputs .mp4 .mkv .mov .webm .avi .y4m .yuv or PNG frame folders; output .ncv)")
    g.add_argument("--gop", type=int, default=32, help="frames between I-frames: 1 = all intra, 0 = only the first (default 32)")
    g.add_argument("--no-scenecut", dest="scenecut", action="store_false",
                   help="keep the GOP's frame types (by default a frame is coded as an I-frame wherever that is "
                        "smaller than its P-frame, which doubles the coding work of P-frames; writes format 1.0)")
    g.add_argument("--frames", type=int, help="code only the first N frames")
    g.add_argument("--size", help="raw .yuv only: frame size WxH")
    g.add_argument("--fps", type=str, help="frame rate (raw .yuv: required; PNG folders: default 25), e.g. 30000/1001")
    g.add_argument("--pix-fmt", default="yuv420p", help="raw .yuv pixel format (ffmpeg name, default yuv420p)")
    g.add_argument("--frames-from-folder", action="store_true", help="the input is a folder of PNG frames in name order")


def add_decode_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("video (.ncv inputs; -o out.mkv | out.y4m | out.mp4 | folder/)")
    g.add_argument("--crf", type=int, default=18, help="libx264 CRF of an .mp4 output (a re-encode for viewing; default 18)")


def _bar(total: int | None, quiet: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", disable=quiet, file=sys.stderr, leave=False)


def _say(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg)


def _notices(caught, quiet: bool) -> None:
    seen = set()
    for w in caught:
        msg = str(w.message)
        if not quiet and msg not in seen:
            seen.add(msg)
            print(f"ncodec: notice: {msg}", file=sys.stderr)


def _fps(text: str | None):
    from fractions import Fraction

    if text is None:
        return None
    try:
        f = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise InputError(f"--fps must be a positive number or fraction, got {text!r}") from None
    if f <= 0:
        raise InputError(f"--fps must be positive, got {text}")
    return f


def cmd_encode(args: argparse.Namespace) -> int:
    from .models import DEFAULT_MODEL
    from .models.video_registry import DEFAULT_VIDEO_MODEL, VIDEO_REGISTRY, video_model_for_image

    if len(args.inputs) != 1:
        raise InputError("video encoding takes one input")
    src = Path(args.inputs[0])
    dst = Path(args.output) if args.output else src.with_suffix(NCV_SUFFIX)
    if dst.suffix.lower() != NCV_SUFFIX:
        raise InputError(f"{dst}: video output must end in {NCV_SUFFIX}")
    if dst.exists() and not args.force:
        raise InputError(f"{dst} exists (use --force to overwrite)")
    # the image-model default means the video default; an image model names the video model built on it
    model = DEFAULT_VIDEO_MODEL if args.model == DEFAULT_MODEL else video_model_for_image(args.model) or args.model
    if model.partition("@")[0] not in VIDEO_REGISTRY:  # ID@N: that weights version (checked when loading)
        from .cli import UsageError

        raise UsageError(f"unknown video model '{model}' (known: {', '.join(sorted(VIDEO_REGISTRY))}, or the image "
                         f"model one codes frames with: {', '.join(sorted({s.image_model for s in VIDEO_REGISTRY.values()}))})")
    if args.gop < 0 or (args.frames is not None and args.frames < 1):
        raise InputError("--gop must be >= 0 and --frames >= 1")
    from .io.video import open_video, parse_size
    from .video import encode_video

    size = parse_size(args.size) if args.size else None
    fps = _fps(args.fps)
    with open_video(src, size, fps, args.pix_fmt) as r:  # fail early, and know the frame count
        total = r.info.frames
    if args.frames is not None:
        total = min(total, args.frames) if total else args.frames
    bar = _bar(total, args.quiet, "encoding")
    psnrs = []

    def on_frame(coded) -> None:
        bar.update()
        if coded.psnr is not None:
            psnrs.append(coded.psnr)

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            enc = encode_video(src, dst, model, args.quality, args.gop, args.frames, args.device,
                               reconstruct=args.verify, size=size, fps=fps, pix_fmt=args.pix_fmt, on_frame=on_frame,
                               scene_cuts=args.scenecut)
        finally:
            bar.close()
    _notices(caught, args.quiet)
    secs = time.perf_counter() - t0
    n_i = sum(enc.intra)
    extra = f", {sum(psnrs) / len(psnrs):.2f} dB PSNR (mean over frames)" if psnrs else ""
    _say(f"{src} -> {dst}: {enc.frames} frames ({n_i} I, {enc.frames - n_i} P), quality {enc.header.quality:g}, "
         f"{enc.bytes} bytes, {enc.bpp:.4f} bpp, {enc.frames / secs:.1f} fps{extra}", args.quiet)
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    if len(args.inputs) != 1:
        raise InputError("video decoding takes one .ncv input")
    if not args.output:
        raise InputError("give the output with -o: out.mkv, out.y4m, out.mp4 or folder/")
    src, dst = Path(args.inputs[0]), args.output
    if Path(dst.rstrip("/")).exists() and not args.force:
        raise InputError(f"{dst} exists (use --force to overwrite)")
    if not src.exists():
        raise InputError(f"{src}: no such file")
    from .io.video import VideoWriter
    from .video import VideoDecoder

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with VideoDecoder(src, args.device) as dec:
            h = dec.header
            bar = _bar(dec.frames, args.quiet, "decoding")
            try:
                with VideoWriter(dst, h.width, h.height, h.fps, args.crf) as out:
                    for frame in dec.frames_from(0):
                        out.write(frame.rgb)
                        bar.update()
            finally:
                bar.close()
            n = out.count
    _notices(caught, args.quiet)
    _say(f"{src} -> {dst}: {n} frames {h.width}x{h.height} at {float(h.fps):g} fps, "
         f"{n / (time.perf_counter() - t0):.1f} fps", args.quiet)
    return 0


def info_record(name: str) -> dict:
    """What ``ncodec info`` shows of a .ncv file (torch-free)."""
    from .bitstream.video import NcvReader

    with NcvReader(name) as r:
        f = r.file
        size = r.size
    h = f.header
    sizes = [e.size for e in f.entries]
    types = "".join("I" if e.intra else "P" for e in f.entries)
    i_sizes = [s for s, t in zip(sizes, types) if t == "I"]
    p_sizes = [s for s, t in zip(sizes, types) if t == "P"]
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    return {
        "file": name, "bytes": size, "format": "ncv", "version": f"{f.version[0]}.{f.version[1]}",
        "model": h.model_id, "weights_sha256": h.weights_digest.hex(), "image_model": h.image_model_id,
        "image_weights_sha256": h.image_weights_digest.hex(), "quality": h.quality, "width": h.width,
        "height": h.height, "pad_bottom": h.pad_bottom, "pad_right": h.pad_right,
        "fps": f"{h.fps_num}/{h.fps_den}", "time_base": f"{h.tb_num}/{h.tb_den}", "gop": h.gop,
        "scene_cuts": h.scene_cuts,
        "frames": f.frames, "indexed": f.indexed, "truncated": f.truncated,
        "bpp": size * 8 / (max(f.frames, 1) * h.width * h.height),
        "kbps": size * 8 / 1000 / (f.frames * h.fps_den / h.fps_num) if f.frames else None,
        "mean_bytes_i": mean(i_sizes), "mean_bytes_p": mean(p_sizes), "frame_types": types, "frame_bytes": sizes,
    }


def print_info(r: dict) -> None:
    print(f"{r['file']}: neuralcodec video, format {r['version']}, {r['bytes']} bytes")
    state = "" if r["indexed"] else " (no frame index: cut short" + (" mid-frame)" if r["truncated"] else ")")
    print(f"  {'model':<10} {r['model']} on {r['image_model']}")
    print(f"  {'quality':<10} {r['quality']:g}")
    print(f"  {'size':<10} {r['width']}x{r['height']}")
    print(f"  {'frames':<10} {r['frames']}{state}")
    print(f"  {'fps':<10} {r['fps']}")
    print(f"  {'gop':<10} {r['gop']}" + (" (scene cuts: extra I-frames where cheaper)" if r["scene_cuts"] else ""))
    print(f"  {'bpp':<10} {r['bpp']:.4f}" + (f"  ({r['kbps']:.1f} kbit/s)" if r["kbps"] else ""))
    for t in ("i", "p"):
        if r[f"mean_bytes_{t}"] is not None:
            print(f"  {t.upper() + '-frames':<10} {r['frame_types'].count(t.upper())}, mean {r[f'mean_bytes_{t}']:.0f} bytes")
    types = r["frame_types"]
    print(f"  {'types':<10} {types[:64]}{'...' if len(types) > 64 else ''}")
    print(f"  {'weights':<10} {r['weights_sha256'][:16]} (image model {r['image_weights_sha256'][:16]})")


def model_rows() -> list[dict]:
    """Video models with what the manifest says about their weights versions (torch-free)."""
    from .models.manifest import read_manifest, versions
    from .models.video_registry import DEFAULT_VIDEO_MODEL, VIDEO_REGISTRY

    manifest = read_manifest()
    rows = []
    for mid, spec in VIDEO_REGISTRY.items():
        vs = versions(mid, manifest, "video_models")
        e = vs[-1] if vs else {}
        rows.append({"id": mid, "kind": "video", "default": mid == DEFAULT_VIDEO_MODEL, "description": spec.description,
                     "image_model": spec.image_model, "config": spec.config, "weights": e.get("file"), "training": e.get("training"),
                     "results": e.get("results", []),
                     "versions": [{k: v.get(k) for k in ("version", "file", "sha256", "image_model", "image_sha256")}
                                  for v in reversed(vs)]})
    return rows


def print_models(rows: list[dict]) -> None:
    from .cli import print_versions

    for r in rows:
        state = "weights installed" if r["weights"] else "no weights installed"
        default = " [default for video]" if r["default"] else ""
        print(f"{r['id']}{default} (video, frames coded with {r['image_model']}): {r['description']} ({state})")
        print_versions(r["versions"])


__all__ = ["NeuralCodecError", "cmd_encode", "cmd_decode", "cmd_info", "info_record", "print_info", "model_rows", "print_models"]


def cmd_info(args: argparse.Namespace) -> int:
    """``ncodec info`` of .ncv files (all inputs must be .ncv)."""
    from .cli import _err

    failed, records = 0, []
    for name in args.inputs:
        try:
            if not name.lower().endswith(NCV_SUFFIX):
                raise InputError("give .ncv and .ncf files to separate 'ncodec info' calls")
            if not Path(name).exists():
                raise InputError("no such file")
            records.append(info_record(name))
        except NeuralCodecError as exc:
            _err(f"{name}: {exc}")
            failed += 1
    if args.json:
        print(json.dumps(records if len(args.inputs) > 1 else (records[0] if records else None), indent=2))
    else:
        for r in records:
            print_info(r)
    return 1 if failed else 0
