"""How much a P-frame saves on a perfectly still scene: one crop of a sample photo coded three times.

    OMP_NUM_THREADS=1 python scripts/still_scene.py stem-msh stem-elic stem-elic-cg

Prints, per video model and size, the bytes of frames 1-2 as P-frames (GOP 0, scene cuts off)
against the same frames as I-frames (GOP 1). docs/benchmarks.md, "A still scene".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neuralcodec.video import encode_video  # noqa: E402

PHOTO = Path(__file__).resolve().parents[1] / "samples" / "coffee.png"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--sizes", nargs="+", default=["128x192", "256x384"], help="HxW crops")
    args = p.parse_args()
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            h, w = (int(v) for v in size.split("x"))
            src = Path(tmp) / size
            src.mkdir()
            for i in range(3):
                Image.fromarray(np.ascontiguousarray(photo[10 : 10 + h, 20 : 20 + w])).save(src / f"{i + 1:06d}.png")
            for model in args.models:
                intra = encode_video(src, Path(tmp) / "i.ncv", model, gop=1).frame_sizes[1:]
                inter = encode_video(src, Path(tmp) / "p.ncv", model, gop=0, scene_cuts=False).frame_sizes[1:]
                print(f"{model:14s} {h}x{w}: P-frames {sum(inter)} bytes, I-frames {sum(intra)} bytes, "
                      f"{100 * (sum(inter) / sum(intra) - 1):+.1f} %")


if __name__ == "__main__":
    main()
