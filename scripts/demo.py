#!/usr/bin/env python
"""`make demo`: encode and decode the bundled samples with the bundled weights, print bpp and PSNR."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import neuralcodec as nc
from neuralcodec._malloc import tune_malloc
from neuralcodec.io import load_image, save_image, write_atomic
from neuralcodec.metrics import psnr
from neuralcodec.models import DEFAULT_MODEL
from neuralcodec.models.weights import load_model

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    tune_malloc()
    out = ROOT / "out" / "demo"
    print(f"{'image':<14}{'quality':>8}{'bytes':>9}{'bpp':>8}{'PSNR dB':>9}  decoded == encoder's reconstruction")
    loaded = load_model(DEFAULT_MODEL)
    qualities = (loaded.quality_range[0], loaded.default_quality, loaded.quality_range[1])
    for path in sorted((ROOT / "samples").glob("*.png")):
        img = load_image(path)
        for q in qualities:
            enc = nc.encode_image(img, quality=q, reconstruct=True)
            ncf = out / f"{path.stem}_q{q:g}.ncf"
            write_atomic(ncf, enc.data)
            dec = nc.decode(ncf.read_bytes())
            save_image(dec.rgb, ncf.with_suffix(".png"))
            same = np.array_equal(dec.rgb, enc.rgb)
            print(f"{path.name:<14}{q:>8g}{len(enc.data):>9}{enc.bpp:>8.3f}{psnr(img.rgb, dec.rgb):>9.2f}  {same}")
            if not same:
                raise SystemExit("decoder output differs from the encoder's reconstruction")
    print(f"model {DEFAULT_MODEL}; files in {out}; try: .venv/bin/ncodec info {out}/coffee_q{qualities[1]:g}.ncf")


if __name__ == "__main__":
    main()
