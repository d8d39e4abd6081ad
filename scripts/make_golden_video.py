#!/usr/bin/env python
"""Write a golden video file for every installed video weights version that has none:
tests/golden/video/v1.0-<id>.ncv for version 1, v1.0-<id>@<N>.ncv after (3 frames of foreman, a
64x48 crop, GOP 0: I P P), the encoder's reconstructions as PNGs beside it, and a .json with the
model ids and digests. A golden file is written once and never rewritten.

    python scripts/make_golden_video.py [VIDEO_MODEL_ID]
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import tempfile
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neuralcodec.io.video import open_video  # noqa: E402
from neuralcodec.models.manifest import versions  # noqa: E402
from neuralcodec.models.video_registry import VIDEO_REGISTRY  # noqa: E402
from neuralcodec.video import encode_video  # noqa: E402

SOURCE = ROOT.parent / "shared" / "data" / "video" / "foreman_cif.mp4"
CROP = (140, 60, 204, 108)  # left, top, right, bottom: 64x48 around the face


def main() -> None:
    models = sys.argv[1:] or list(VIDEO_REGISTRY)
    out = ROOT / "tests" / "golden" / "video"
    out.mkdir(parents=True, exist_ok=True)
    existing = {json.loads(p.read_text())["weights_sha256"] for p in out.glob("*.json")}
    for model in models:
        for entry in versions(model, section="video_models"):
            if entry["sha256"] in existing:
                continue
            v = entry["version"]
            write(out, f"v1.0-{model}" if v == 1 else f"v1.0-{model}@{v}", model, v)


def write(out: Path, name: str, model: str, version: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, open_video(SOURCE) as reader:
        src = Path(tmp) / "frames"
        src.mkdir()
        for i, rgb in zip(range(3), reader):
            Image.fromarray(rgb).crop(CROP).save(src / f"{i + 1:06d}.png")
        coded = []
        enc = encode_video(src, out / f"{name}.ncv", f"{model}@{version}", gop=0, reconstruct=True,
                           on_frame=coded.append)
    for c in coded:
        Image.fromarray(c.rgb).save(out / f"{name}.{c.record.number}.png")
    h = enc.header
    meta = {
        "model": model, "version": version, "format": "1.0", "weights_sha256": h.weights_digest.hex(),
        "image_model": h.image_model_id, "image_weights_sha256": h.image_weights_digest.hex(), "quality": h.quality,
        "gop": h.gop, "frames": enc.frames, "source": f"foreman_cif.mp4 frames 0-2, crop {CROP}",
        "latent_digests": [c.record.latent_digest.hex() for c in coded],
        "rgb_sha256": [hashlib.sha256(c.rgb.tobytes()).hexdigest() for c in coded],
        "reference": f"the encoder's reconstructions ({platform.machine()}, torch {torch.__version__}, "
                     f"{torch.get_num_threads()} threads)",
    }
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {out / name}.ncv ({enc.bytes} bytes), .json and {enc.frames} reference PNGs")


if __name__ == "__main__":
    main()
