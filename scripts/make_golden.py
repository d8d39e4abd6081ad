#!/usr/bin/env python
"""(Re)write the golden files in tests/golden: a small real image coded with the shipped weights.

Run this only when the weights change on purpose. A format or coder change must keep the
existing golden files decoding to the same pixels: that is what tests/test_codec.py checks.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from PIL import Image

import neuralcodec as nc
from neuralcodec import bitstream

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    out = ROOT / "tests" / "golden"
    out.mkdir(parents=True, exist_ok=True)
    im = Image.open(ROOT / "samples" / "chelsea.png").convert("RGB").crop((150, 40, 250, 110))  # 100x70
    for model in ["mean-scale-hyperprior"]:
        enc = nc.encode_image(im, model=model, quality=None, reconstruct=True)
        name = f"v{bitstream.VERSION[0]}.{bitstream.VERSION[1]}-{model}"
        (out / f"{name}.ncf").write_bytes(enc.data)
        meta = {
            "model": model, "format": ".".join(map(str, bitstream.VERSION)), "source": "samples/chelsea.png crop (150,40,250,110)",
            "quality": enc.header.quality, "weights_sha256": enc.header.weights_digest.hex(),
            "rgb_sha256": hashlib.sha256(enc.rgb.tobytes()).hexdigest(),
        }
        (out / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
        print(f"wrote {out / name}.ncf ({len(enc.data)} bytes)")


if __name__ == "__main__":
    main()
