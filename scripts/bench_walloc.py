#!/usr/bin/env python
"""WaLLoC on Kodak: encode cost against the mean-scale hyperprior, entropy-coded files against the
same latents packed into lossless PNG (the published WaLLoC's storage), and the published points.

Encode time is the whole ``nc.encode_image`` call (padding, transform, linear encoder, entropy
coding, container; no reconstruction) per 768x512 image, median after one warm-up, both models in
the same process with the same thread count. The PNG baseline tiles the very symbols our file codes
(48 channels in a 6 x 8 grid, shifted to start at 0, 8-bit when they fit, else 16-bit, Pillow's
best compression) plus 4 bytes for the shift: both decode to identical reconstructions.

    python scripts/bench_walloc.py --threads 2
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
import torch
from PIL import Image

import neuralcodec as nc
from neuralcodec import evaluation as ev
from neuralcodec._malloc import tune_malloc
from neuralcodec.io.files import list_images
from neuralcodec.io.images import LoadedImage
from neuralcodec.metrics import psnr
from neuralcodec.models.weights import load_model

MODEL = "walloc-16x"
PUBLISHED = {"kodim05, 16x latent": (43.0, 30.6)}  # compression ratio, PSNR dB (Jacobellis & Yadwadkar)


def png_bytes(symbols: np.ndarray, grid: tuple[int, int] = (6, 8)) -> int:
    """Size of the symbols (C, h, w) tiled into one lossless PNG, plus 4 bytes for their offset."""
    C, h, w = symbols.shape
    rows, cols = grid
    if rows * cols != C:
        raise ValueError(f"grid {grid} does not hold {C} channels")
    tiled = symbols.reshape(rows, cols, h, w).transpose(0, 2, 1, 3).reshape(rows * h, cols * w)
    shifted = tiled.astype(np.int64) - tiled.min()
    if shifted.max() < 256:
        im = Image.fromarray(shifted.astype(np.uint8), "L")
    else:
        im = Image.fromarray(shifted.astype(np.uint16), "I;16")
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True, compress_level=9)
    return buf.tell() + 4


def symbols_of(rgb: np.ndarray, quality: float) -> np.ndarray:
    """The integer symbols that the .ncf file of ``rgb`` codes (image sides multiples of 16 here)."""
    m = load_model(MODEL).model
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255).contiguous()
    with torch.no_grad():
        return m._y_stage.quantize(m.g_a(x), m.gain.gain64(quality))[0].numpy()


def encode_times(paths: list, quality_of: dict[str, float]) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in quality_of}
    for i, path in enumerate(paths):
        img = LoadedImage(np.asarray(Image.open(path).convert("RGB")), 3, 8)
        for model, q in quality_of.items():
            t = time.perf_counter()
            nc.encode_image(img, model, q)
            if i:  # the first image warms up both models
                times[model].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def wpt_times(levels: int = 4, repeat: int = 5) -> dict[str, tuple[float, float]]:
    """(forward, inverse) ms of the J-level packet transform of one 768x512 RGB image, per path."""
    from neuralcodec.models import wpt

    x = torch.rand(1, 3, 512, 768)
    out = {}
    for name, conv_min in (("2-D convolution", wpt._CONV_MIN), ("1-D strided windows", 10**9)):
        saved, wpt._CONV_MIN = wpt._CONV_MIN, conv_min
        try:
            y = wpt.wpt(x, levels)
            fwd, inv = [], []
            for _ in range(repeat):
                t = time.perf_counter()
                y = wpt.wpt(x, levels)
                fwd.append(time.perf_counter() - t)
                t = time.perf_counter()
                wpt.iwpt(y, levels)
                inv.append(time.perf_counter() - t)
            out[name] = (statistics.median(fwd) * 1000, statistics.median(inv) * 1000)
        finally:
            wpt._CONV_MIN = saved
    return out


def main() -> None:
    tune_malloc()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/kodak")
    p.add_argument("--limit", type=int, default=0, help="first N images only (0: all)")
    p.add_argument("--qualities", type=int, default=6, help="points over the shipped quality range")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    paths = [q for q in list_images(args.data) if Image.open(q).size in ((768, 512), (512, 768))]
    paths = paths[: args.limit] if args.limit else paths
    loaded = load_model(MODEL)
    qualities = ev.spread(loaded.quality_range, args.qualities)

    print(f"wavelet packet transform, J=4, one 768x512 RGB image, {args.threads} threads (median of 5):")
    for name, (fwd, inv) in wpt_times().items():
        print(f"  {name:<22} forward {fwd:7.1f} ms  inverse {inv:7.1f} ms")

    t = encode_times(paths[: min(len(paths), 8)], {MODEL: loaded.default_quality, "mean-scale-hyperprior": None})
    print(f"encode, median of {min(len(paths), 8) - 1} Kodak images after 1 warm-up, {args.threads} threads:")
    for model, sec in t.items():
        print(f"  {model:<24} {sec * 1000:8.1f} ms")
    print(f"  WaLLoC encodes {t['mean-scale-hyperprior'] / t[MODEL]:.1f}x faster than the mean-scale hyperprior")

    print(f"\n{len(paths)} Kodak images: .ncf (learned prior) vs the same symbols as lossless PNG")
    print(f"{'quality':>8}{'ncf bpp':>9}{'PNG bpp':>9}{'PNG/ncf':>9}{'PSNR dB':>9}  images where PNG is smaller")
    kodim05 = []
    for q in qualities:
        ncf = png = png_wins = 0
        scores = []
        for path in paths:
            rgb = np.asarray(Image.open(path).convert("RGB"))
            enc = nc.encode_image(LoadedImage(rgb, 3, 8), MODEL, q, reconstruct=True)
            as_png = png_bytes(symbols_of(rgb, q))
            ncf, png, png_wins = ncf + len(enc.data), png + as_png, png_wins + (as_png < len(enc.data))
            scores.append(psnr(rgb, enc.rgb))
            if path.name == "kodim05.png":
                kodim05.append((rgb.size / len(enc.data), scores[-1]))
        pixels = sum(np.prod(Image.open(x).size) for x in paths)
        print(f"{q:>8.2f}{ncf * 8 / pixels:>9.4f}{png * 8 / pixels:>9.4f}{png / ncf:>9.2f}{np.mean(scores):>9.2f}"
              f"  {png_wins} of {len(paths)}")
    if kodim05:
        print("\nkodim05 (compression ratio = 24 bits / bpp, PSNR dB):")
        for ratio, score in kodim05:
            print(f"  {ratio:6.1f}:1  {score:6.2f} dB")
        for name, (ratio, score) in PUBLISHED.items():
            ours = np.interp(-np.log(ratio), [-np.log(r) for r, _ in kodim05], [s for _, s in kodim05],
                             left=np.nan, right=np.nan)
            print(f"  published WaLLoC {name}: {score:.1f} dB at {ratio:.0f}:1; ours at {ratio:.0f}:1: {ours:.2f} dB")


if __name__ == "__main__":
    main()
