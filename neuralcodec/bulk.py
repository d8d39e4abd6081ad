"""Bulk encoding: an image tree to tar shards of ``.ncf`` files (WebDataset layout) or to a folder,
one process or many.

    torchrun --nproc_per_node 4 -m neuralcodec.bulk encode photos/ shards/ --model walloc-16x --labels folder
    python -m neuralcodec.bulk encode photos/ compressed/ --format folder

The images under SRC (sorted by path) are cut into blocks of ``--shard-size`` files; block ``s``
becomes ``DST/shard-{s:06d}.tar`` (or the block's files in the folder) and is encoded by rank
``s % WORLD_SIZE`` (``RANK``/``WORLD_SIZE`` from torchrun's environment; none needed for one
process). The output does not depend on the number of processes. A tar holds ``<key>.ncf`` per
image (key: the path relative to SRC without its suffix, dots in the file name made ``_``) and,
with ``--labels folder``, ``<key>.cls``: the index of the image's top folder among the sorted top
folders. Members carry no time or owner, so a shard's bytes depend only on its images.

Resumable: a shard is written to ``shard-*.tar.partial`` and renamed when complete, so a
``.tar`` that exists is finished and skipped (in folder mode, an existing ``.ncf`` is). The
settings and the input list are recorded in ``DST/bulk.json``; a rerun with other settings or
another input list is refused instead of mixing two encodings. An input that cannot be read is
reported on one line and left out of its shard (exit status 1); the other inputs are done.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError, NeuralCodecError
from .io.files import list_images, write_atomic

PLAN_FILE = "bulk.json"
PROG = "neuralcodec.bulk"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def sample_key(rel: Path) -> str:
    """WebDataset key of an image at ``rel`` (relative to SRC): no suffix, no dot in the name."""
    return (rel.parent / rel.stem.replace(".", "_")).as_posix()


def shard_name(index: int) -> str:
    return f"shard-{index:06d}.tar"


@dataclass
class Summary:
    encoded: int = 0  # images encoded by this rank
    skipped: int = 0  # images whose output existed
    failed: int = 0  # images that could not be read


def _rank_world() -> tuple[int, int]:
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if not 0 <= rank < world:
        raise InputError(f"RANK={rank} is outside 0..WORLD_SIZE-1 (WORLD_SIZE={world})")
    return rank, world


def _plan(src: Path, dst: Path, images: list[Path], fmt: str, labels: str, shard_size: int,
          model_ref: str, digest: str, quality: float) -> dict:
    """What DST holds: written by the first run, checked by every later one (any rank)."""
    rels = [p.relative_to(src) for p in images]
    keys = [sample_key(r) for r in rels]
    seen: dict[str, Path] = {}
    for key, rel in zip(keys, rels):
        if key in seen:
            raise InputError(f"{src / seen[key]} and {src / rel} would both be sample '{key}'; rename one")
        seen[key] = rel
    classes = []
    if labels == "folder":
        top = [r for r in rels if len(r.parts) < 2]
        if top:
            raise InputError(f"--labels folder: {src / top[0]} is not inside a class folder")
        classes = sorted({r.parts[0] for r in rels})
    plan = {"format": fmt, "model": model_ref, "weights": digest, "quality": quality, "shard_size": shard_size,
            "labels": labels, "classes": classes, "samples": len(keys),
            "keys_digest": hashlib.blake2b("\n".join(keys).encode(), digest_size=16).hexdigest()}
    path = dst / PLAN_FILE
    if path.exists():
        old = json.loads(path.read_text())
        diff = [k for k in plan if old.get(k) != plan[k]]
        if diff:
            what = ", ".join(f"{k} {old.get(k)!r} -> {plan[k]!r}" for k in diff if k != "keys_digest")
            if "keys_digest" in diff:
                what = (what + ", " if what else "") + "the list of input images changed"
            raise InputError(f"{dst} holds a bulk encoding made with other settings ({what}); "
                             "use another DST or remove it")
    else:  # every rank may get here at once: identical content, atomic writes
        write_atomic(path, json.dumps(plan, indent=1).encode())
    return plan


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def _loaded(paths: list[Path], summary: Summary, log) -> list[tuple[Path, object]]:
    """(path, LoadedImage) of the readable inputs; one line per unreadable one."""
    from .io.images import load_image

    out = []
    for p in paths:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                out.append((p, load_image(p)))
            except (NeuralCodecError, OSError, ValueError) as exc:
                log(f"{PROG}: error: {exc}" if str(exc).startswith(str(p)) else f"{PROG}: error: {p}: {exc}")
                summary.failed += 1
        for w in caught:
            log(f"{PROG}: notice: {p}: {w.message}")
    return out


def encode_tree(
    src: str | Path, dst: str | Path, model: str = "walloc-16x", quality: float | None = None,
    shard_size: int = 1000, fmt: str = "tar", labels: str = "none", batch: int = 8, device: str = "cpu",
    rank: int = 0, world: int = 1, progress: bool = False, log=lambda msg: print(msg, file=sys.stderr),
) -> Summary:
    """Encode this rank's blocks of the images under ``src`` into ``dst`` (see the module doc)."""
    from tqdm import tqdm

    from .codec import encode_images
    from .models.weights import load_model

    src, dst = Path(src), Path(dst)
    if fmt not in ("tar", "folder") or labels not in ("none", "folder"):
        raise ValueError(f"format must be tar or folder and labels none or folder, got {fmt!r}, {labels!r}")
    if shard_size < 1 or batch < 1:
        raise InputError(f"--shard-size and --batch must be at least 1, got {shard_size} and {batch}")
    if not src.is_dir():
        raise InputError(f"{src} is not a folder")
    if dst.exists() and not dst.is_dir():
        raise InputError(f"{dst} exists and is not a folder")
    loaded = load_model(model, device)
    quality = loaded.default_quality if quality is None else float(quality)
    loaded.check_quality(quality)
    images = list_images(src)
    if not images:
        raise InputError(f"no images under {src}")
    dst.mkdir(parents=True, exist_ok=True)
    plan = _plan(src, dst, images, fmt, labels, shard_size, loaded.ref, loaded.digest.hex(), quality)
    blocks = [images[i : i + shard_size] for i in range(0, len(images), shard_size)]
    mine = [s for s in range(len(blocks)) if s % world == rank]
    summary = Summary()
    bar = tqdm(total=sum(len(blocks[s]) for s in mine), unit="img", desc=f"encoding ({world} process"
               f"{'es' if world > 1 else ''})", disable=not progress or rank != 0, file=sys.stderr, leave=False)

    def encoded(paths: list[Path]):
        """(path, .ncf bytes) of the readable ones among ``paths``, in order; ``batch`` images in memory."""
        for i in range(0, len(paths), batch):
            ok = _loaded(paths[i : i + batch], summary, bar.write if progress and rank == 0 else log)
            bar.update(len(paths[i : i + batch]) - len(ok))
            for (p, _), enc in zip(ok, encode_images([im for _, im in ok], loaded.ref, quality, device, batch=batch)):
                summary.encoded += 1
                bar.update(1)
                yield p, enc.data

    for s in mine:
        block = blocks[s]
        if fmt == "folder":
            todo = [p for p in block if not (dst / p.relative_to(src)).with_suffix(".ncf").exists()]
            summary.skipped += len(block) - len(todo)
            bar.update(len(block) - len(todo))
            for p, data in encoded(todo):
                write_atomic((dst / p.relative_to(src)).with_suffix(".ncf"), data)
            continue
        final = dst / shard_name(s)
        if final.exists():
            summary.skipped += len(block)
            bar.update(len(block))
            continue
        partial = final.with_name(final.name + ".partial")  # one owner per shard: a fixed name is safe
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            for p, data in encoded(block):
                rel = p.relative_to(src)
                key = sample_key(rel)
                _add(tar, f"{key}.ncf", data)
                if labels == "folder":
                    _add(tar, f"{key}.cls", str(plan["classes"].index(rel.parts[0])).encode())
        os.replace(partial, final)
    bar.close()
    return summary


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("encode", help="encode the images under SRC into DST")
    e.add_argument("src", metavar="SRC")
    e.add_argument("dst", metavar="DST")
    e.add_argument("--model", default="walloc-16x", help="model id (default walloc-16x, made for learning on latents)")
    e.add_argument("--quality", type=float, help="default: the model's default quality")
    e.add_argument("--shard-size", type=int, default=1000, help="images per tar shard / per block (default 1000)")
    e.add_argument("--format", choices=("tar", "folder"), default="tar")
    e.add_argument("--labels", choices=("none", "folder"), default="none",
                   help="folder: write <key>.cls, the index of the image's top folder (tar only)")
    e.add_argument("--batch", type=int, default=8, help="images per network call (same-size images batch)")
    e.add_argument("--device", default="cpu", help="cpu, cuda (then cuda:LOCAL_RANK under torchrun) or cuda:N")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rank, world = _rank_world()
        device = args.device
        if device == "cuda" and "LOCAL_RANK" in os.environ:
            device = f"cuda:{os.environ['LOCAL_RANK']}"
        s = encode_tree(args.src, args.dst, args.model, args.quality, args.shard_size, args.format, args.labels,
                        args.batch, device, rank, world, progress=not args.quiet)
    except (NeuralCodecError, ValueError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    if not args.quiet:
        print(f"{PROG}: rank {rank}/{world}: {s.encoded} encoded, {s.skipped} already done, {s.failed} failed",
              file=sys.stderr)
    return EXIT_FAILED if s.failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
