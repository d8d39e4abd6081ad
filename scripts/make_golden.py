#!/usr/bin/env python
"""Write the golden files in tests/golden: a small real image coded with each model's shipped weights.

A model's golden file is (re)written only when it is missing or its weights changed on purpose.
A format or coder change must keep the existing golden files decoding to the same pixels: that
is what tests/test_codec.py checks.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from PIL import Image

import neuralcodec as nc
from neuralcodec import bitstream
from neuralcodec.models.weights import read_manifest

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    out = ROOT / "tests" / "golden"
    out.mkdir(parents=True, exist_ok=True)
    im = Image.open(ROOT / "samples" / "chelsea.png").convert("RGB").crop((150, 40, 250, 110))  # 100x70
    models = read_manifest()["models"]
    for model in models:
        name = f"v{bitstream.VERSION[0]}.{bitstream.VERSION[1]}-{model}"
        meta_path = out / f"{name}.json"
        if meta_path.exists() and json.loads(meta_path.read_text())["weights_sha256"] == models[model]["sha256"]:
            print(f"{name}: up to date")
            continue
        enc = nc.encode_image(im, model=model, quality=None, reconstruct=True)
        (out / f"{name}.ncf").write_bytes(enc.data)
        meta = {
            "model": model, "format": ".".join(map(str, bitstream.VERSION)), "source": "samples/chelsea.png crop (150,40,250,110)",
            "quality": enc.header.quality, "weights_sha256": enc.header.weights_digest.hex(),
            "rgb_sha256": hashlib.sha256(enc.rgb.tobytes()).hexdigest(),
            # the synthesis's round-off can depend on the thread count (the decoder then warns)
            "threads": torch.get_num_threads(),
        }
        (out / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
        print(f"wrote {out / name}.ncf ({len(enc.data)} bytes)")


if __name__ == "__main__":
    main()
