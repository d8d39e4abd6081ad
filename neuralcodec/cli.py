"""``ncodec``: encode, decode, inspect, evaluate and list models. Parsing, progress and exit codes only.

Start-up is kept light: ``--help``, ``info`` and ``models`` import no torch; the codec (torch and
compressai's layers) is imported inside the commands that code.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import time
import warnings
from pathlib import Path

from . import __version__
from .errors import InputError, NeuralCodecError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_RESOURCE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = f"""exit status:
  {EXIT_OK}    every input was done
  {EXIT_FAILED}    an input failed (unreadable, not an image, damaged file, ...); the others were done
  {EXIT_USAGE}    bad command line: unknown option or value, unknown model or device, quality out of
       range, two inputs that would write the same output; nothing was done
  {EXIT_RESOURCE}    out of memory on an input (the others were done)
  {EXIT_INTERRUPTED}  interrupted
Each failure is one 'ncodec: error: ...' line on stderr. NEURALCODEC_DEBUG=1 adds the traceback
of an unexpected error."""
NCF_SUFFIX = ".ncf"
DEBUG_ENV = "NEURALCODEC_DEBUG"


class UsageError(NeuralCodecError):
    """A bad option value or combination, found before any work (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``ncodec: error: ...`` and exit status 2."""

    def error(self, message: str):
        _err(f"{message} (see '{self.prog} --help')")
        sys.exit(EXIT_USAGE)


def _err(msg: str) -> None:
    """One ``ncodec: error:`` line (a multi-line message is joined)."""
    line = " ".join(part.strip() for part in str(msg).splitlines() if part.strip())
    print(f"ncodec: error: {line}", file=sys.stderr)


_OOM_MESSAGES = ("defaultcpuallocator", "out of memory", "allocate memory", "not enough memory", "failed to map segment")


def _out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure (Python, numpy, torch on CPU or CUDA, mmap)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    if isinstance(exc, OSError) and exc.errno == errno.ENOMEM:
        return True
    return isinstance(exc, (RuntimeError, OSError, ImportError)) and any(s in str(exc).lower() for s in _OOM_MESSAGES)


def _check_device(device: str) -> None:
    """Raise UsageError unless ``device`` names a device torch can use here (cpu, cuda, cuda:N, mps)."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise UsageError(f"unknown device '{device}' (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError(f"--device {device}: no CUDA device is available")
        if dev.index is not None and dev.index >= count:
            raise UsageError(f"--device {device}: there {'is' if count == 1 else 'are'} only {count} CUDA "
                             f"device{'s' if count > 1 else ''} (cuda:0..cuda:{count - 1})")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise UsageError(f"--device {device}: MPS is not available")
    elif dev.type != "cpu":
        raise UsageError(f"unsupported device '{device}' (use cpu, cuda or cuda:N)")


def _check_model(model_id: str) -> None:
    from .models import REGISTRY

    if model_id not in REGISTRY:
        raise UsageError(f"unknown model '{model_id}' (known: {', '.join(sorted(REGISTRY))}; see 'ncodec models')")


def _expand(inputs: list[str], suffixes: set[str]) -> list[tuple[Path, Path]]:
    """(file, path relative to its input root) for files and the matching files under directories."""
    out = []
    for s in inputs:
        p = Path(s)
        if p.is_dir():
            out += [(f, f.relative_to(p)) for f in sorted(p.rglob("*")) if f.is_file() and f.suffix.lower() in suffixes]
        else:
            out.append((p, Path(p.name)))
    return out


def _plan(pairs: list[tuple[Path, Path]], output: str | None, suffix: str, many: bool) -> list[tuple[Path, Path]]:
    """Input -> output paths: ``-o`` names a file for one input, else a folder keeping relative paths."""
    if output and not many and not output.endswith(("/", "\\")) and not Path(output).is_dir():
        return [(pairs[0][0], Path(output))]
    plan = []
    for src, rel in pairs:
        dst = Path(output) / rel if output else src
        plan.append((src, dst.with_suffix(suffix)))
    _refuse_collisions(plan)
    return plan


def _refuse_collisions(plan: list[tuple[Path, Path]]) -> None:
    """Raise UsageError, before any work, if two inputs map to one output (``a.png``, ``a.jpg`` -> ``a.ncf``)."""
    first: dict[str, Path] = {}
    for src, dst in plan:
        key = os.path.normcase(os.path.abspath(dst))
        if key in first and first[key] != src:
            raise UsageError(f"{first[key]} and {src} would both be written to {dst}; "
                             "rename one or give them separate commands")
        first.setdefault(key, src)


def _progress(items: list, quiet: bool, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="file", disable=quiet or len(items) < 2, file=sys.stderr, leave=False)


def _say(msg: str, quiet: bool) -> None:
    if not quiet:
        from tqdm import tqdm

        tqdm.write(msg, file=sys.stdout)


def _notices(caught: list[warnings.WarningMessage], quiet: bool) -> None:
    for w in caught:
        if not quiet:
            print(f"ncodec: notice: {w.message}", file=sys.stderr)


def _run(plan: list[tuple[Path, Path]], args: argparse.Namespace, desc: str, job) -> int:
    """Run ``job(src, dst) -> message`` (or ``(message, fields)``) over the plan: refuse overwrites,
    print notices and one error line per failed input, and return the exit status. With ``--json``
    stdout gets one JSON object per input instead of the message: input, output, the job's fields
    and seconds, or "error" for a failed input (whose error line still goes to stderr)."""
    status = EXIT_OK
    as_json = getattr(args, "json", False)
    for src, dst in _progress(plan, args.quiet, desc):
        record: dict = {"input": str(src), "output": str(dst)}
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                if dst.exists() and not args.force:
                    raise InputError(f"{dst} exists (use --force to overwrite)")
                result = job(src, dst)
                message, fields = result if isinstance(result, tuple) else (result, {})
                record.update(fields)
                if not as_json:
                    _say(message, args.quiet)
            except (NeuralCodecError, ValueError, OSError, MemoryError, RuntimeError) as exc:
                if isinstance(exc, RuntimeError) and not _out_of_memory(exc):
                    raise  # a bug, not a property of this input: main() reports it
                oom = _out_of_memory(exc)
                msg = f"out of memory while {desc}" if oom else str(exc)
                _err(msg if msg.startswith(str(src)) or msg.startswith(str(dst)) else f"{src}: {msg}")
                record["error"] = msg
                status = max(status, EXIT_RESOURCE if oom else EXIT_FAILED)
        if as_json:
            record["seconds"] = round(time.perf_counter() - started, 3)
            print(json.dumps(record), flush=True)
        _notices(caught, args.quiet)
    return status


def _many(inputs: list[str]) -> bool:
    return len(inputs) > 1 or Path(inputs[0]).is_dir()


def cmd_encode(args: argparse.Namespace) -> int:
    from . import cli_video

    if cli_video.wants_video_encode(args):
        if getattr(args, "json", False):
            raise UsageError("--json is for images; for a video, 'ncodec info clip.ncv --json' describes the result")
        return cli_video.cmd_encode(args)
    from .codec import encode_images, encode_to_target
    from .io import load_image, write_atomic
    from .metrics import psnr
    from .io.files import IMAGE_SUFFIXES

    targeted = args.bpp is not None or args.psnr is not None
    if targeted and args.quality is not None:
        raise UsageError("--quality cannot be combined with --bpp or --psnr")
    for name in ("bpp", "psnr"):
        if getattr(args, name) is not None and not getattr(args, name) > 0:
            raise UsageError(f"--{name} must be positive, got {getattr(args, name):g}")
    _check_model(args.model)
    _check_device(args.device)
    _check_metadata(args.metadata)
    if args.quality is not None:
        _check_quality(args.model, args.quality, args.device)
    pairs = _expand(args.inputs, IMAGE_SUFFIXES)
    if not pairs:
        raise InputError("no input images found")

    def job(src: Path, dst: Path) -> str:
        img = load_image(src)
        if targeted:
            enc = encode_to_target(img, args.model, bpp=args.bpp, psnr=args.psnr, device=args.device, effort=args.effort,
                                   metadata=args.metadata)
        else:
            enc = next(encode_images([img], args.model, args.quality, args.device, batch=1, reconstruct=args.verify,
                                     effort=args.effort, metadata=args.metadata))
        write_atomic(dst, enc.data)
        fields = _file_fields(enc.data, enc.header)
        if enc.rgb is not None:
            fields["psnr"] = psnr(img.rgb, enc.rgb)
        extra = f", {fields['psnr']:.2f} dB PSNR" if "psnr" in fields else ""
        return f"{src} -> {dst}: quality {enc.header.quality:g}, {len(enc.data)} bytes, {enc.bpp:.4f} bpp{extra}", fields

    return _run(_plan(pairs, args.output, NCF_SUFFIX, _many(args.inputs)), args, "encoding", job)


def _file_fields(data: bytes, header) -> dict:
    """What ``--json`` reports of a .ncf file: size, rate, quality, model and format version."""
    return {"bytes": len(data), "bpp": len(data) * 8 / (header.width * header.height), "quality": header.quality,
            "model": header.model_id, "version": f"{data[4]}.{data[5]}", "width": header.width, "height": header.height}


def _check_metadata(spec: str) -> None:
    from .io.images import metadata_kinds

    try:
        metadata_kinds(spec)
    except InputError as exc:
        raise UsageError(f"--metadata: {exc}") from None


def _check_quality(model_id: str, quality: float, device: str) -> None:
    from .models.weights import load_model

    try:
        load_model(model_id, device).check_quality(quality)
    except ValueError as exc:
        raise UsageError(f"{exc} (see 'ncodec models')") from None


def cmd_decode(args: argparse.Namespace) -> int:
    from . import cli_video

    if cli_video.wants_video_decode(args):
        if getattr(args, "json", False):
            raise UsageError("--json is for images; for a video, 'ncodec info clip.ncv --json' describes the input")
        return cli_video.cmd_decode(args)
    from .codec import decode
    from .io import save_image

    _check_device(args.device)
    pairs = _expand(args.inputs, {NCF_SUFFIX})
    if not pairs:
        raise InputError("no .ncf files found")

    if args.max_pixels < 0:
        raise UsageError(f"--max-pixels must be 0 (no limit but the format's) or positive, got {args.max_pixels}")

    def job(src: Path, dst: Path) -> str:
        data = _read(src)
        dec = decode(data, args.device, max_pixels=args.max_pixels or None)
        save_image(dec.rgb, dst, dec.header.channels, dec.metadata)
        return f"{src} -> {dst}: {dec.header.width}x{dec.header.height}", _file_fields(data, dec.header)

    return _run(_plan(pairs, args.output, "." + args.format, _many(args.inputs)), args, "decoding", job)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file") from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})") from None


def cmd_info(args: argparse.Namespace) -> int:
    from . import cli_video

    if cli_video.wants_video_decode(args):
        return cli_video.cmd_info(args)
    from . import bitstream

    failed, records = 0, []
    for name in args.inputs:
        try:
            data = _read(Path(name))
            c = bitstream.unpack(data)
        except NeuralCodecError as exc:
            _err(f"{name}: {exc}")
            failed += 1
            continue
        h = c.header
        rec = {
            "file": name, "bytes": len(data), "version": f"{c.version[0]}.{c.version[1]}",
            "model": h.model_id, "weights_sha256": h.weights_digest.hex(), "quality": h.quality,
            "width": h.width, "height": h.height, "channels": h.channels, "bit_depth": h.bit_depth,
            "pad_bottom": h.pad_bottom, "pad_right": h.pad_right, "frames": h.frames,
            "bpp": len(data) * 8 / (h.width * h.height), "latent_digest": h.latent_digest.hex(),
            "sections": [len(s) for s in c.sections],
            "metadata": {k: len(v) for k, v in c.metadata.items()},
        }
        records.append(rec)
    if args.json:
        print(json.dumps(records if len(args.inputs) > 1 else (records[0] if records else None), indent=2))
    else:
        for r in records:
            print(f"{r['file']}: neuralcodec file, format {r['version']}, {r['bytes']} bytes")
            for k in ("model", "quality", "width", "height", "channels", "bit_depth", "frames", "bpp"):
                v = r[k]
                print(f"  {k:<10} {v:.4f}" if isinstance(v, float) and k == "bpp" else f"  {k:<10} {v}")
            print(f"  {'weights':<10} {r['weights_sha256'][:16]}")
            print(f"  {'sections':<10} {', '.join(map(str, r['sections']))} bytes")
            if r["metadata"]:
                print(f"  {'metadata':<10} {', '.join(f'{k} {n} bytes' for k, n in r['metadata'].items())}")
    return EXIT_FAILED if failed else EXIT_OK


def print_versions(vs: list[dict]) -> None:
    """``ncodec models``' line of weights versions, newest first (the plain id encodes with it)."""
    if len(vs) > 1:
        print("    versions: " + ", ".join(f"@{v['version']} {v['sha256'][:12]}" + (" (encodes by default)" if i == 0 else "")
                                       for i, v in enumerate(vs)))


def cmd_models(args: argparse.Namespace) -> int:
    from .models import DEFAULT_MODEL, REGISTRY
    from .models.manifest import read_manifest, versions

    manifest = read_manifest()["models"]
    rows = []
    for mid, spec in REGISTRY.items():
        entry = manifest.get(mid, {})
        rows.append({"id": mid, "default": mid == DEFAULT_MODEL, "description": spec.description, "config": spec.config,
                     "weights": entry.get("file"), "quality_range": entry.get("quality_range"),
                     "default_quality": entry.get("default_quality"),
                     "training": entry.get("training"), "kodak_rd": entry.get("kodak_rd", []),
                     "versions": [{k: v.get(k) for k in ("version", "file", "sha256", "quality_range", "default_quality")}
                                  for v in reversed(versions(mid, {"models": manifest}))]})
    from .cli_video import model_rows, print_models

    if args.json:
        print(json.dumps(rows + model_rows(), indent=2))
        return EXIT_OK
    for r in rows:
        state = "no weights installed"
        if r["weights"]:
            lo, hi = r["quality_range"] or (1, r["config"].get("levels", 1))
            state = f"weights installed, quality {lo:g}..{hi:g}, default {r['default_quality'] or (lo + hi) / 2:g}"
        print(f"{r['id']}{' [default]' if r['default'] else ''}: {r['description']} ({state})")
        print_versions(r["versions"])
        for p in r["kodak_rd"]:
            print(f"    quality {p['quality']:<4} {p['bpp']:.3f} bpp  {p['psnr']:.2f} dB PSNR (Kodak mean)")
    print_models(model_rows())
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from . import evaluation as ev
    from .models.weights import load_model, read_manifest

    ids = args.models or [m for m in read_manifest()["models"]]
    for m in ids:
        _check_model(m)
    _check_device(args.device)
    for m in ids:
        for q in args.qualities or []:
            _check_quality(m, q, args.device)
    if args.report and not args.codecs:
        raise UsageError("--report ranks images against a baseline: give at least one of --codecs")
    paths = ev.image_paths(args.folder, args.limit)
    images = ev.load_folder(args.folder, args.limit)
    models = {m: args.qualities or ev.spread(load_model(m, args.device).quality_range, 5) for m in ids}
    n = sum(map(len, models.values())) + sum(len(ev.PILLOW[c][1]) for c in args.codecs)
    bar = _progress(list(range(n)), args.quiet, "evaluating")
    per_image = ev.evaluate_per_image(images, models, args.codecs, args.device, progress=lambda s: bar.update())
    results = {name: [ev.mean_point(pts) for pts in rows] for name, rows in per_image.items()}
    bar.close()
    bd = {m: {c: ev.bd_rates(results[m], results[c]) for c in args.codecs} for m in ids}
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        for name, pts in results.items():
            (out / f"{name}.json").write_text(json.dumps(ev.compressai_json(name, pts, f"ncodec eval {args.folder}"), indent=2))
        ev.plot(results, ids, out / "rd.png", f"{args.folder} ({len(images)} images)")
    if args.report:
        from .compare import write_report

        names = [str(p.relative_to(args.folder)) for p in paths]
        reference = "webp" if "webp" in args.codecs else args.codecs[0]
        report = write_report(Path(args.report), args.folder, names, images, per_image, results, bd, ids[0], reference,
                              args.device)
        if not args.quiet:
            print(f"wrote the report {report}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps({"images": len(images), "results": results, "bd_rate": bd}, indent=2))
        return EXIT_OK
    print(f"{len(images)} images from {args.folder}; bpp of whole files, PSNR-RGB and MS-SSIM of decoded images")
    for name, pts in results.items():
        print(f"{name}")
        for p in pts:
            print(f"  quality {p['quality']:<6g} {p['bpp']:.4f} bpp  {p['psnr']:.2f} dB  MS-SSIM {p['ms_ssim']:.4f}")
    for m, rows in bd.items():
        for c, v in rows.items():
            print(f"{m} vs {c}: BD-rate {v['psnr']:+.1f}% (PSNR), {v['ms_ssim']:+.1f}% (MS-SSIM)")
    if args.output:
        print(f"wrote {args.output}/<curve>.json (CompressAI results format) and {args.output}/rd.png")
    return EXIT_OK


def _crop_point(spec: str | None) -> tuple[int, int] | None:
    if spec is None:
        return None
    try:
        x, y = (int(v) for v in spec.split(","))
    except ValueError:
        raise UsageError(f"--crop takes X,Y (two integers, the 1:1 crop's top-left corner), got '{spec}'") from None
    return x, y


def _check_compare_output(path: Path, force: bool) -> None:
    if path.suffix.lower() != ".png":
        raise UsageError(f"the figure is a PNG: -o must end in .png, got '{path}'")
    if path.exists() and not force:
        raise UsageError(f"{path} exists (use --force to overwrite)")


def cmd_compare(args: argparse.Namespace) -> int:
    """One figure: the original, ours, JPEG, WebP and AVIF at our file size (neuralcodec.compare)."""
    output = Path(args.output)
    _check_compare_output(output, args.force)
    crop = _crop_point(args.crop)
    if args.crop_size < 8:
        raise UsageError(f"--crop-size must be at least 8, got {args.crop_size}")
    if args.bpp is not None and not args.bpp > 0:
        raise UsageError(f"--bpp must be positive, got {args.bpp:g}")
    _check_model(args.model)
    _check_device(args.device)
    if args.quality is not None:
        _check_quality(args.model, args.quality, args.device)
    from .compare import TEXT_KEY, compare, region_at, save_png
    from .io import load_image

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ref = load_image(args.image).rgb
        try:
            region = region_at(ref, *crop, args.crop_size) if crop else None
        except ValueError as exc:  # a --crop outside the image
            raise UsageError(str(exc)) from None
        fig, chunks = compare(ref, Path(args.image).name, args.model, args.quality, args.bpp, args.device, region,
                              args.crop_size)
        save_png(fig, chunks, output)
    _notices(caught, args.quiet)
    if not args.quiet:
        for p in json.loads(chunks[TEXT_KEY])["panels"][1:]:  # the figure's labels, as text
            print(f"{p['codec']:<5} " + ", ".join(p["label"][1:]) + (f" ({p['note']})" if p["note"] else ""))
        print(f"wrote {output} ({fig.width}x{fig.height})")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from .bitstream import DEFAULT_MAX_PIXELS, MAX_PIXELS
    from .cli_video import add_decode_arguments, add_encode_arguments
    from .models import DEFAULT_MODEL

    p = _Parser(prog="ncodec", description="Learned image compression.", epilog=EXIT_CODES,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"ncodec {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("encode", help="compress images to .ncf files")
    e.add_argument("inputs", nargs="+", help="image files or directories (searched recursively)")
    e.add_argument("-o", "--output", help="output file (one input) or directory (keeps relative paths)")
    e.add_argument("--model", default=DEFAULT_MODEL, help=f"model id (default {DEFAULT_MODEL}; see 'ncodec models')")
    e.add_argument("--quality", type=float, default=None,
                   help="any float in the model's range, higher is better (default and ranges: 'ncodec models')")
    target = e.add_mutually_exclusive_group()
    target.add_argument("--bpp", type=float, help="pick per image the highest quality whose file is at most this size")
    target.add_argument("--psnr", type=float, help="pick per image the lowest quality reaching this PSNR-RGB (dB)")
    e.add_argument("--verify", action="store_true",
                   help="also reconstruct: print PSNR and record the image digest decoders check")
    e.add_argument("--effort", type=int, default=0, choices=range(7), metavar="N",
                   help="0-6: refine each image's latents before coding, smaller files at the same "
                        "quality, slower (0: one pass, default; 6: about 45 s per 768x512 image on one core)")
    e.add_argument("--metadata", default="icc", metavar="LIST",
                   help="source metadata the file keeps, written back on decode: none, all, or a comma list "
                        "of icc, exif, xmp (default icc; EXIF orientation is always applied to the pixels)")
    e.set_defaults(func=cmd_encode)
    add_encode_arguments(e)

    d = sub.add_parser("decode", help="decompress .ncf files to images")
    d.add_argument("inputs", nargs="+", help=".ncf files or directories")
    d.add_argument("-o", "--output", help="output file (one input, format from its extension) or directory")
    d.add_argument("--format", default="png", help="image format for outputs in a directory (default png)")
    d.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"refuse files of more than N pixels before decoding (default {DEFAULT_MAX_PIXELS}, "
                        f"48 Mi; 0: the format's limit, {MAX_PIXELS})")
    d.set_defaults(func=cmd_decode)
    add_decode_arguments(d)
    for s in (e, d):
        s.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
        s.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
        s.add_argument("-q", "--quiet", action="store_true", help="print errors only")
        s.add_argument("--json", action="store_true",
                       help="print one JSON object per file on stdout (input, output, bytes, bpp, quality, model, "
                            "version, seconds; psnr with --verify; error for a failed input)")

    i = sub.add_parser("info", help="show a file's header")
    i.add_argument("inputs", nargs="+")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)

    ev = sub.add_parser("eval", help="rate-distortion of our models against JPEG/WebP/AVIF on a folder of images")
    ev.add_argument("folder", help="folder of images (searched recursively)")
    ev.add_argument("--models", nargs="+", help="model ids (default: every model with installed weights)")
    ev.add_argument("--qualities", type=float, nargs="+", help="default: 5 points over each model's range")
    ev.add_argument("--codecs", nargs="*", default=["jpeg", "webp", "avif"], choices=["jpeg", "webp", "avif"])
    ev.add_argument("--limit", type=int, default=0, help="use only the first N images")
    ev.add_argument("-o", "--output", help="folder for one CompressAI-format JSON per curve and rd.png")
    ev.add_argument("--report", metavar="DIR",
                    help="folder for a report: index.md, rd.png, per-image results (per_image.json) and comparison "
                         "figures of the images where the first model does best and worst against WebP")
    ev.add_argument("--device", default="cpu")
    ev.add_argument("--json", action="store_true")
    ev.add_argument("-q", "--quiet", action="store_true")
    ev.set_defaults(func=cmd_eval)

    c = sub.add_parser("compare", help="one figure: the image, ours, JPEG, WebP and AVIF at the same file size")
    c.add_argument("image", help="image file")
    c.add_argument("-o", "--output", required=True, help="the figure (.png; labels and numbers also in its tEXt)")
    c.add_argument("--model", default=DEFAULT_MODEL, help=f"model id (default {DEFAULT_MODEL})")
    rate = c.add_mutually_exclusive_group()
    rate.add_argument("--quality", type=float, help="our quality (default: the model's default)")
    rate.add_argument("--bpp", type=float, help="our file: the highest quality within this many bits per pixel")
    c.add_argument("--crop", metavar="X,Y", help="top-left corner of the 1:1 crop (default: around the most detailed "
                                                 "region); the 4:1 zoom shows its centre")
    c.add_argument("--crop-size", type=int, default=256, metavar="N", help="side of the 1:1 crop (default 256)")
    c.add_argument("--device", default="cpu")
    c.add_argument("-f", "--force", action="store_true", help="overwrite the output")
    c.add_argument("-q", "--quiet", action="store_true")
    c.set_defaults(func=cmd_compare)

    m = sub.add_parser("models", help="list models and their measured rate-distortion")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)
    return p


def main(argv: list[str] | None = None) -> int:
    from ._malloc import tune_malloc

    tune_malloc()
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        _err(str(exc))
        return EXIT_USAGE
    except NeuralCodecError as exc:
        _err(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `ncodec models | head`: stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except Exception as exc:  # last resort: an unexpected failure is still one line
        if os.environ.get(DEBUG_ENV):
            raise
        if _out_of_memory(exc):
            _err(f"out of memory ({type(exc).__name__})")
            return EXIT_RESOURCE
        _err(f"unexpected {type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 for the traceback)")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
