#!/usr/bin/env python
"""Decode (and encode) time per Kodak image of our models, split into stages, against compressai's
serial-context mbt2018 (random init, same channel counts N=96/M=128).

Stages: "synthesis" is g_s; "coder" is time inside the constriction range coder; "nets" is the
rest (analysis or hyper/context parameter networks, quantization, bookkeeping). The entropy
stage of a decode is everything except the synthesis. Times are medians over the images after a
warm-up image, in one process, with the same thread count.

    python scripts/bench_context.py --limit 4 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import numpy as np
import torch
from PIL import Image

from neuralcodec._malloc import tune_malloc
from neuralcodec.entropy import coder
from neuralcodec.errors import ModelError
from neuralcodec.io.files import list_images
from neuralcodec.models.weights import load_model

CLOCK: dict[str, float] = defaultdict(float)


def _timed(name, fn):
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            CLOCK[name] += time.perf_counter() - t
    return wrapper


def stopwatch(fn):
    """Run ``fn``; returns its result and the seconds spent per stage (plus "total")."""
    CLOCK.clear()
    t = time.perf_counter()
    out = fn()
    CLOCK["total"] = time.perf_counter() - t
    return out, dict(CLOCK)


def bench_ours(model_id: str, images: list[torch.Tensor], quality: float | None) -> dict[str, float] | None:
    try:
        loaded = load_model(model_id)
    except ModelError as exc:
        print(f"skipping {model_id}: {exc}")
        return None
    m = loaded.model
    q = loaded.default_quality if quality is None else quality
    m.g_s.forward = _timed("synthesis", m.g_s.forward)
    m.g_a.forward = _timed("analysis", m.g_a.forward)
    rows = defaultdict(list)
    for i, x in enumerate(images):
        h, w = x.shape[-2:]
        coded, enc = stopwatch(lambda: m.compress(x, q, reconstruct=False)[0])
        _, dec = stopwatch(lambda: m.decompress(coded.sections, h, w, q))
        if i == 0:
            continue
        rows["bpp"].append(sum(map(len, coded.sections)) * 8 / (h * w))
        rows["enc_total"].append(enc["total"])
        rows["enc_analysis"].append(enc["analysis"])
        rows["enc_coder"].append(enc["coder"])
        rows["dec_total"].append(dec["total"])
        rows["dec_synthesis"].append(dec["synthesis"])
        rows["dec_coder"].append(dec["coder"])
    return {k: statistics.median(v) for k, v in rows.items()}


def bench_mbt2018(images: list[torch.Tensor]) -> dict[str, float]:
    from compressai.models import JointAutoregressiveHierarchicalPriors

    torch.manual_seed(0)
    net = JointAutoregressiveHierarchicalPriors(N=96, M=128).eval()
    net.update(force=True)
    net.g_s.forward = _timed("synthesis", net.g_s.forward)
    rows = defaultdict(list)
    for i, x in enumerate(images):
        with torch.no_grad():
            comp = net.compress(x)
            _, dec = stopwatch(lambda: net.decompress(comp["strings"], comp["shape"]))
        if i == 0:
            continue
        rows["dec_total"].append(dec["total"])
        rows["dec_synthesis"].append(dec["synthesis"])
    return {k: statistics.median(v) for k, v in rows.items()}


def main() -> None:
    tune_malloc()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=[
        "mean-scale-hyperprior", "checkerboard-hyperprior", "elic-context-hyperprior", "factorized-prior"])
    p.add_argument("--data", default="../shared/data/kodak")
    p.add_argument("--limit", type=int, default=4, help="images (the first is a warm-up)")
    p.add_argument("--quality", type=float, default=None, help="default: each model's default quality")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-mbt2018", action="store_true", help="skip compressai's serial model (slow)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    coder.encode = _timed("coder", coder.encode)
    coder.decode = _timed("coder", coder.decode)
    paths = [q for q in list_images(args.data) if Image.open(q).size == (768, 512)][: args.limit]
    images = [torch.from_numpy(np.asarray(Image.open(q).convert("RGB")).copy()).permute(2, 0, 1)[None]
              .float().div(255).contiguous() for q in paths]
    print(f"{len(images) - 1} Kodak 768x512 images after 1 warm-up, {args.threads} threads; seconds per image\n")
    print("| model | bpp | decode | entropy stage | synthesis | coder (dec) | encode | analysis | coder (enc) |")
    print("|---|---|---|---|---|---|---|---|---|")
    results = {}
    for mid in args.models:
        r = bench_ours(mid, images, args.quality)
        if r is None:
            continue
        results[mid] = r
        print(f"| {mid} | {r['bpp']:.3f} | {r['dec_total']:.3f} | {r['dec_total'] - r['dec_synthesis']:.3f} "
              f"| {r['dec_synthesis']:.3f} | {r['dec_coder']:.3f} | {r['enc_total']:.3f} | {r['enc_analysis']:.3f} "
              f"| {r['enc_coder']:.3f} |")
    if not args.no_mbt2018:
        r = bench_mbt2018(images)
        results["mbt2018"] = r
        print(f"| compressai mbt2018 (serial, random init) | – | {r['dec_total']:.3f} "
              f"| {r['dec_total'] - r['dec_synthesis']:.3f} | {r['dec_synthesis']:.3f} | – | – | – | – |")
        for mid in ("checkerboard-hyperprior", "elic-context-hyperprior"):
            if mid in results:
                o = results[mid]
                print(f"\n{mid} vs mbt2018: whole decode {r['dec_total'] / o['dec_total']:.1f}x faster, entropy stage "
                      f"{(r['dec_total'] - r['dec_synthesis']) / (o['dec_total'] - o['dec_synthesis']):.1f}x faster")
    base = results.get("mean-scale-hyperprior")
    if base:
        for mid, o in results.items():
            if mid not in ("mean-scale-hyperprior", "mbt2018"):
                print(f"{mid}: decode {o['dec_total'] / base['dec_total']:.2f}x the mean-scale hyperprior's")


if __name__ == "__main__":
    main()
