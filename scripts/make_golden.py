#!/usr/bin/env python
"""Write the golden files in tests/golden: a small real image coded with every installed weights
version of every model, with the reference reconstruction beside it.

For each model version ``tests/golden/v<format>-<id>[@<version>]`` holds:
  .ncf   the file (version 1 files keep their original names, ``v1.0-<id>``)
  .png   the reference reconstruction the conformance test compares decodes against
  .json  model, version, weights digest, format, source crop, and where the reference came from

A golden file is written once and never rewritten: new weights are a new version with a new
golden file. For a golden file that predates reference PNGs, the PNG is this machine's decode;
its ``reference`` field says whether that equals the encoder's reconstruction (checked against
the recorded ``rgb_sha256``) or is a conforming decode on another machine.
"""

from __future__ import annotations

import hashlib
import json
import platform
import warnings
from pathlib import Path

import torch
from PIL import Image

import neuralcodec as nc
from neuralcodec import bitstream
from neuralcodec.models.manifest import read_manifest, versions

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "samples/chelsea.png crop (150,40,250,110)"


def _machine() -> str:
    return f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads"


def _add_reference(ncf: Path, meta: dict) -> None:
    """Decode an existing golden file here and keep the result as its reference PNG."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nc.errors.ReconstructionMismatchWarning)
        rgb = nc.decode(ncf.read_bytes()).rgb
    Image.fromarray(rgb).save(ncf.with_suffix(".png"))
    same = hashlib.sha256(rgb.tobytes()).hexdigest() == meta.get("rgb_sha256")
    meta["reference"] = ("the encoder's reconstruction (decoded here; equal to the recorded rgb_sha256)" if same else
                         f"a conforming decode on {_machine()}: the latents decode exactly, the encoder's own "
                         "pixels (rgb_sha256) differ from it by synthesis round-off")


def main() -> None:
    out = ROOT / "tests" / "golden"
    out.mkdir(parents=True, exist_ok=True)
    im = Image.open(ROOT / "samples" / "chelsea.png").convert("RGB").crop((150, 40, 250, 110))  # 100x70
    existing = {json.loads(p.read_text())["weights_sha256"]: p for p in out.glob("*.json")}
    fmt = ".".join(map(str, bitstream.VERSION))
    for model in read_manifest()["models"]:
        for entry in versions(model):
            meta_path = existing.get(entry["sha256"])
            if meta_path is not None:
                meta = json.loads(meta_path.read_text())
                if meta_path.with_suffix(".png").exists():
                    print(f"{meta_path.stem}: up to date")
                    continue
                _add_reference(meta_path.with_suffix(".ncf"), meta)
                meta.setdefault("version", entry["version"])
                meta_path.write_text(json.dumps(meta, indent=1) + "\n")
                print(f"{meta_path.stem}: reference PNG added ({meta['reference'][:40]}...)")
                continue
            name = f"v{fmt}-{model}" + (f"@{entry['version']}" if entry["version"] > 1 else "")
            enc = nc.encode_image(im, model=f"{model}@{entry['version']}", quality=None, reconstruct=True)
            (out / f"{name}.ncf").write_bytes(enc.data)
            Image.fromarray(enc.rgb).save(out / f"{name}.png")
            meta = {
                "model": model, "version": entry["version"], "format": fmt, "source": SOURCE,
                "quality": enc.header.quality, "weights_sha256": enc.header.weights_digest.hex(),
                "rgb_sha256": hashlib.sha256(enc.rgb.tobytes()).hexdigest(),
                "reference": f"the encoder's reconstruction ({_machine()})",
            }
            (out / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
            print(f"wrote {out / name}.ncf ({len(enc.data)} bytes)")


if __name__ == "__main__":
    main()
