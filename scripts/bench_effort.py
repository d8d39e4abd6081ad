#!/usr/bin/env python
"""BD-rate and encode time of each ``--effort`` level against effort 0, on real files.

Every point is a real .ncf file: bpp from its bytes, PSNR-RGB of the decoded image, which must
equal the encoder's reconstruction bit for bit. Qualities: ``--qualities`` evenly over the model's
shipped range; BD-rate (PSNR) of each level's mean curve against effort 0's. Encode time is per
image (CPU seconds of this process and wall seconds), with ``--threads`` torch threads.

Rows are cached in ``--out`` (JSON lines, one per model, effort, quality and image), so a long
measurement can run in pieces and be resumed; the table is printed from the cache.

    python scripts/bench_effort.py --model mean-scale-hyperprior --images 8 --qualities 4 --threads 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from neuralcodec import codec
from neuralcodec.evaluation import load_folder, spread
from neuralcodec.io.images import LoadedImage
from neuralcodec.metrics import bd_rate, psnr
from neuralcodec.models import refine
from neuralcodec.models.weights import load_model


def measure(ref: np.ndarray, model: str, quality: float, effort: int) -> dict:
    """One real file: bytes, decoded PSNR and the encode's CPU and wall seconds."""
    c0, t0 = time.process_time(), time.perf_counter()
    enc = codec.encode_image(LoadedImage(ref, 3, 8), model, quality, reconstruct=True, effort=effort)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    dec = codec.decode(enc.data)
    if not np.array_equal(dec.rgb, enc.rgb):
        raise SystemExit(f"{model} q={quality} effort={effort}: decoded image differs from the encoder's reconstruction")
    return {"bpp": enc.bpp, "psnr": psnr(ref, dec.rgb), "encode_cpu_s": cpu, "encode_wall_s": wall}


def plan(effort: int) -> dict:
    """The refinement schedule of an effort level, as stored with each row."""
    return dataclasses.asdict(refine.schedule(effort))


def load_cache(path: Path) -> dict[tuple, dict]:
    rows = {}
    if path.exists():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            if r.get("schedule") == plan(r["effort"]):  # rows of another schedule are not reused
                rows[(r["model"], r["effort"], r["quality"], r["image"])] = r
    return rows


def table(rows: dict[tuple, dict], model: str, efforts: list[int], qualities: list[float], images: int) -> list[dict]:
    """Per effort: mean curve over the images, BD-rate vs effort 0, mean encode seconds."""
    def curve(e: int) -> tuple[list[float], list[float]] | None:
        pts = [[rows.get((model, e, q, i)) for i in range(images)] for q in qualities]
        if any(r is None for p in pts for r in p):
            return None
        return [float(np.mean([r["bpp"] for r in p])) for p in pts], [float(np.mean([r["psnr"] for r in p])) for p in pts]

    base = curve(0)
    out = []
    for e in efforts:
        c = curve(e)
        if c is None or base is None:
            continue
        cells = [rows[(model, e, q, i)] for q in qualities for i in range(images)]
        out.append({
            "effort": e, "steps": refine.STEPS[e], "bd_rate_psnr": bd_rate(base[0], base[1], c[0], c[1]),
            "bpp": c[0], "psnr": c[1],
            "encode_cpu_s": float(np.mean([r["encode_cpu_s"] for r in cells])),
            "encode_wall_s": float(np.mean([r["encode_wall_s"] for r in cells])),
        })
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="mean-scale-hyperprior")
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"))
    p.add_argument("--images", type=int, default=8, help="first N images of the folder")
    p.add_argument("--qualities", type=int, default=4, help="qualities evenly over the shipped range")
    p.add_argument("--efforts", default=",".join(str(e) for e in range(refine.MAX_EFFORT + 1)))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", help="cache of measured rows, JSON lines (default "
                   "runs/bench-effort/<model>-<weights digest>.jsonl: rows of other weights are never mixed in)")
    p.add_argument("--measure", action="store_true", help="measure missing rows (else only print the table)")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    efforts = [int(e) for e in args.efforts.split(",")]
    loaded = load_model(args.model)
    qualities = spread(loaded.quality_range, args.qualities)
    digest = loaded.digest.hex()[:12]
    out = Path(args.out or f"runs/bench-effort/{args.model}-{digest}.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = load_cache(out)
    if args.measure:
        images = load_folder(args.data, args.images)
        for e in efforts:
            for q in qualities:
                for i, ref in enumerate(images):
                    if (args.model, e, q, i) in rows:
                        continue
                    r = {"model": args.model, "effort": e, "quality": q, "image": i, "threads": args.threads,
                         "schedule": plan(e), **measure(ref, args.model, q, e)}
                    rows[(args.model, e, q, i)] = r
                    with open(out, "a") as f:
                        f.write(json.dumps(r) + "\n")
                    print(f"effort {e} q={q:g} image {i}: {r['bpp']:.4f} bpp {r['psnr']:.2f} dB "
                          f"{r['encode_cpu_s']:.1f} s CPU", flush=True)
    print(f"{args.model} (weights {digest}): first {args.images} images of {args.data}, qualities {qualities}, "
          f"{args.threads} thread(s)")
    print("| effort | steps | BD-rate vs effort 0 (PSNR) | encode CPU s/image | encode wall s/image |")
    print("|---|---|---|---|---|")
    for r in table(rows, args.model, efforts, qualities, args.images):
        print(f"| {r['effort']} | {r['steps']} | {r['bd_rate_psnr']:+.2f} % | {r['encode_cpu_s']:.1f} | {r['encode_wall_s']:.1f} |")


if __name__ == "__main__":
    main()
