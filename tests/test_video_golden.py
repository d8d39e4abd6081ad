"""The golden .ncv files keep decoding: latents exactly (the decoder checks every frame's digest),
pixels within the conformance tolerance of the encoder's reconstructions (docs/video.md). There is
one per video weights version and format; the 1.1 ones hold a scene cut (an I-frame off the GOP)."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neuralcodec.conformance import TOLERANCE, deviation
from neuralcodec.video import decode_frame, decode_video, read_video_info

GOLDEN = Path(__file__).parent / "golden" / "video"
NAMES = sorted(p.stem for p in GOLDEN.glob("*.ncv"))


def test_there_is_a_golden_video_file():
    assert NAMES


def test_every_installed_video_version_has_a_golden_file_of_the_current_format():
    from neuralcodec.bitstream.video import VERSION
    from neuralcodec.models.manifest import read_manifest, versions

    manifest = read_manifest()
    have = {(m["weights_sha256"], m["format"]) for m in (json.loads((GOLDEN / f"{n}.json").read_text()) for n in NAMES)}
    fmt = f"{VERSION[0]}.{VERSION[1]}"
    for model in manifest.get("video_models", {}):
        for e in versions(model, manifest, "video_models"):
            assert (e["sha256"], fmt) in have, f"{model}@{e['version']}: no v{fmt} golden (scripts/make_golden_video.py)"


@pytest.mark.parametrize("name", NAMES)
def test_golden_video_decodes_within_tolerance(name):
    meta = json.loads((GOLDEN / f"{name}.json").read_text())
    info = read_video_info(GOLDEN / f"{name}.ncv")
    assert info.header.model_id == meta["model"] and info.header.weights_digest.hex() == meta["weights_sha256"]
    assert info.header.image_weights_digest.hex() == meta["image_weights_sha256"]
    frames = list(decode_video(GOLDEN / f"{name}.ncv"))  # raises LatentMismatchError unless latents are exact
    assert [f.intra for f in frames] == meta.get("frame_intra", [True] + [False] * (meta["frames"] - 1))  # v1.0: I P P
    for f in frames:
        reference = np.asarray(Image.open(GOLDEN / f"{name}.{f.index}.png").convert("RGB"))
        dev = deviation(reference, f.rgb)
        assert dev.within(TOLERANCE), f"{name} frame {f.index}: {dev} outside {TOLERANCE}"


@pytest.mark.parametrize("name", NAMES)
def test_golden_video_seeks_to_its_last_frame(name):
    last = json.loads((GOLDEN / f"{name}.json").read_text())["frames"] - 1
    reference = np.asarray(Image.open(GOLDEN / f"{name}.{last}.png").convert("RGB"))
    assert deviation(reference, decode_frame(GOLDEN / f"{name}.ncv", last)).within(TOLERANCE)
