"""How much a P-frame saves on a perfectly still scene: one crop of a sample photo coded three times.

    OMP_NUM_THREADS=1 python scripts/still_scene.py stem-msh stem-elic stem-elic-cg stem-elic-copy

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

from neuralcodec.errors import NeuralCodecError  # noqa: E402
from neuralcodec.video import encode_video  # noqa: E402

PHOTO = Path(__file__).resolve().parents[1] / "samples" / "coffee.png"


def crop_size(text: str) -> tuple[int, int]:
    """``HxW`` within the sample photo (400x600) at offset (10, 20)."""
    try:
        h, w = (int(v) for v in text.split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not HxW") from None
    if not (16 <= h <= 390 and 16 <= w <= 580):
        raise argparse.ArgumentTypeError(f"{text}: a crop from 16x16 to 390x580")
    return h, w


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+")
    p.add_argument("--sizes", nargs="+", type=crop_size, default=[(128, 192), (256, 384)], help="HxW crops")
    args = p.parse_args()
    photo = np.asarray(Image.open(PHOTO).convert("RGB"))
    with tempfile.TemporaryDirectory() as tmp:
        for h, w in args.sizes:
            src = Path(tmp) / f"{h}x{w}"
            src.mkdir()
            for i in range(3):
                Image.fromarray(np.ascontiguousarray(photo[10 : 10 + h, 20 : 20 + w])).save(src / f"{i + 1:06d}.png")
            for model in args.models:
                try:
                    intra = encode_video(src, Path(tmp) / "i.ncv", model, gop=1).frame_sizes[1:]
                    inter = encode_video(src, Path(tmp) / "p.ncv", model, gop=0, scene_cuts=False).frame_sizes[1:]
                except NeuralCodecError as exc:
                    sys.exit(f"still_scene.py: {exc}")
                print(f"{model:14s} {h}x{w}: P-frames {sum(inter)} bytes, I-frames {sum(intra)} bytes, "
                      f"{100 * (sum(inter) / sum(intra) - 1):+.1f} %")


if __name__ == "__main__":
    main()
