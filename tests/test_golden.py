"""Golden files: every shipped weights version keeps decoding, under the conformance rule
(docs/bitstream.md): latents exactly, pixels within the tolerance of the reference reconstruction."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import neuralcodec as nc
from neuralcodec.conformance import TOLERANCE, deviation
from neuralcodec.models import REGISTRY
from neuralcodec.models.manifest import read_manifest, versions

GOLDEN = Path(__file__).parent / "golden"
NAMES = sorted(p.stem for p in GOLDEN.glob("*.ncf"))


def test_every_installed_weights_version_has_a_golden_file():
    assert sorted(REGISTRY) == sorted(read_manifest()["models"])
    golden = {json.loads(p.read_text())["weights_sha256"] for p in GOLDEN.glob("*.json")}
    for model in REGISTRY:
        for entry in versions(model):
            assert entry["sha256"] in golden, f"no golden file for {model}@{entry['version']}: run scripts/make_golden.py"


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", NAMES)
def test_golden_file_decodes_within_tolerance(name, threads):
    meta = json.loads((GOLDEN / f"{name}.json").read_text())
    reference = np.asarray(Image.open(GOLDEN / f"{name}.png").convert("RGB"))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:  # decode raises LatentMismatchError unless every latent symbol is exact
        dec = nc.decode((GOLDEN / f"{name}.ncf").read_bytes())
    finally:
        torch.set_num_threads(before)
    assert dec.header.model_id == meta["model"] and dec.header.weights_digest.hex() == meta["weights_sha256"]
    dev = deviation(reference, dec.rgb)
    assert dev.within(TOLERANCE), f"{name}: {dev} outside {TOLERANCE}"


@pytest.mark.parametrize("name", NAMES)
def test_golden_latents_are_exact(name):
    data = (GOLDEN / f"{name}.ncf").read_bytes()
    latent, header = nc.codec.decode_latent(data)  # raises LatentMismatchError if any symbol differs
    assert latent.shape[0] > 0 and header.model_id == json.loads((GOLDEN / f"{name}.json").read_text())["model"]


def test_tolerance_rejects_a_broken_decoder():
    """The rule is not vacuous: a 3-level error in one sample, or 1 level everywhere, fails it."""
    ref = np.full((70, 100, 3), 128, np.uint8)
    one = ref.copy()
    one[5, 5, 0] += 3
    assert not deviation(ref, one).within(TOLERANCE)
    assert not deviation(ref, ref + 1).within(TOLERANCE)
    near = ref.copy()
    near[1, 2, 1] += 1
    assert deviation(ref, near).within(TOLERANCE) and deviation(ref, ref).psnr == float("inf")
