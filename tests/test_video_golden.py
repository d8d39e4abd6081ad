"""The golden .ncv file keeps decoding: latents exactly (the decoder checks every frame's digest),
pixels within the conformance tolerance of the encoder's reconstructions (docs/video.md)."""

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


@pytest.mark.parametrize("name", NAMES)
def test_golden_video_decodes_within_tolerance(name):
    meta = json.loads((GOLDEN / f"{name}.json").read_text())
    info = read_video_info(GOLDEN / f"{name}.ncv")
    assert info.header.model_id == meta["model"] and info.header.weights_digest.hex() == meta["weights_sha256"]
    assert info.header.image_weights_digest.hex() == meta["image_weights_sha256"]
    frames = list(decode_video(GOLDEN / f"{name}.ncv"))  # raises LatentMismatchError unless latents are exact
    assert [f.intra for f in frames] == [True] + [False] * (meta["frames"] - 1)
    for f in frames:
        reference = np.asarray(Image.open(GOLDEN / f"{name}.{f.index}.png").convert("RGB"))
        dev = deviation(reference, f.rgb)
        assert dev.within(TOLERANCE), f"{name} frame {f.index}: {dev} outside {TOLERANCE}"


@pytest.mark.parametrize("name", NAMES)
def test_golden_video_seeks_to_its_last_frame(name):
    last = json.loads((GOLDEN / f"{name}.json").read_text())["frames"] - 1
    reference = np.asarray(Image.open(GOLDEN / f"{name}.{last}.png").convert("RGB"))
    assert deviation(reference, decode_frame(GOLDEN / f"{name}.ncv", last)).within(TOLERANCE)
