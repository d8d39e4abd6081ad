#!/usr/bin/env python
"""Write a golden video file for every installed video weights version that has none in the
current format: tests/golden/video/v1.1-<id>.ncv for version 1, v1.1-<id>@<N>.ncv after, the
encoder's reconstructions as PNGs beside it, and a .json with the model ids, digests and frame
types. Golden files are written once and never rewritten; the v1.0 ones (3 frames of foreman, I P P)
stay as they are. A 1.1 file holds a scene cut: two frames of foreman (64x48 crop), then two of
carphone, GOP 0, so that the cut is an I-frame off the GOP rule (the script checks it is).

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

from neuralcodec.bitstream.video import VERSION  # noqa: E402
from neuralcodec.io.video import open_video  # noqa: E402
from neuralcodec.models.manifest import versions  # noqa: E402
from neuralcodec.models.video_registry import VIDEO_REGISTRY  # noqa: E402
from neuralcodec.video import encode_video  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "video"
SCENES = [("foreman_cif.mp4", (140, 60, 204, 108)), ("carphone_pristine.mp4", (56, 40, 120, 88))]  # (left, top, right, bottom)
FORMAT = f"{VERSION[0]}.{VERSION[1]}"


def main() -> None:
    models = sys.argv[1:] or list(VIDEO_REGISTRY)
    out = ROOT / "tests" / "golden" / "video"
    out.mkdir(parents=True, exist_ok=True)
    existing = {(m["weights_sha256"], m["format"]) for m in (json.loads(p.read_text()) for p in out.glob("*.json"))}
    for model in models:
        for entry in versions(model, section="video_models"):
            if (entry["sha256"], FORMAT) in existing:
                continue
            v = entry["version"]
            write(out, f"v{FORMAT}-{model}" if v == 1 else f"v{FORMAT}-{model}@{v}", model, v)


def write(out: Path, name: str, model: str, version: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "frames"
        src.mkdir()
        for k, (clip, crop) in enumerate(SCENES):
            with open_video(DATA / clip) as reader:
                for i, rgb in zip(range(2), reader):
                    Image.fromarray(rgb).crop(crop).save(src / f"{2 * k + i + 1:06d}.png")
        coded = []
        enc = encode_video(src, out / f"{name}.ncv", f"{model}@{version}", gop=0, reconstruct=True,
                           on_frame=coded.append)
    if enc.intra != [True, False, True, False]:
        (out / f"{name}.ncv").unlink()
        raise SystemExit(f"{name}: frame types {enc.intra}, not I P I P: the cut was not coded as an I-frame")
    for c in coded:
        Image.fromarray(c.rgb).save(out / f"{name}.{c.record.number}.png")
    h = enc.header
    meta = {
        "model": model, "version": version, "format": FORMAT, "weights_sha256": h.weights_digest.hex(),
        "image_model": h.image_model_id, "image_weights_sha256": h.image_weights_digest.hex(), "quality": h.quality,
        "gop": h.gop, "scene_cuts": h.scene_cuts, "frames": enc.frames, "frame_intra": enc.intra,
        "source": "; ".join(f"{clip} frames 0-1, crop {crop}" for clip, crop in SCENES),
        "latent_digests": [c.record.latent_digest.hex() for c in coded],
        "rgb_sha256": [hashlib.sha256(c.rgb.tobytes()).hexdigest() for c in coded],
        "reference": f"the encoder's reconstructions ({platform.machine()}, torch {torch.__version__}, "
                     f"{torch.get_num_threads()} threads)",
    }
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {out / name}.ncv ({enc.bytes} bytes, frame types {''.join('I' if t else 'P' for t in enc.intra)}), "
          f".json and {enc.frames} reference PNGs")


if __name__ == "__main__":
    main()
