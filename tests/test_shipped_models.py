"""Every registered model ships weights and codes real files exactly through the API and the CLI."""

import json

import numpy as np
import pytest

import neuralcodec as nc
from neuralcodec import bitstream
from neuralcodec.models import REGISTRY
from neuralcodec.metrics import psnr
from neuralcodec.models.weights import load_model, read_manifest

from .conftest import crop, run_cli

SHIPPED = sorted(read_manifest()["models"])


@pytest.mark.parametrize("model", SHIPPED)
@pytest.mark.parametrize("size", [(63, 65), (130, 70)])
def test_round_trip_is_bit_exact(photo, model, size):
    h, w = size
    enc = nc.encode_image(crop(photo, w, h, 31, 7), model=model, reconstruct=True)
    dec = nc.decode(enc.data)
    assert dec.rgb.shape == (h, w, 3) and np.array_equal(dec.rgb, enc.rgb)


@pytest.mark.parametrize("model", SHIPPED)
def test_rate_and_quality_grow_with_quality(photo, model):
    im = crop(photo, 192, 128, 120, 60)
    lo, hi = load_model(model).quality_range
    a, b = (nc.encode_image(im, model=model, quality=q, reconstruct=True) for q in (lo, hi))
    ref = np.asarray(im)
    assert a.bpp < b.bpp
    assert psnr(ref, a.rgb) < psnr(ref, b.rgb)
    assert psnr(ref, a.rgb) > 20


@pytest.mark.parametrize("model", SHIPPED)
def test_corrupt_last_pass_is_detected_as_such(photo, model):
    data = nc.encode_image(crop(photo, 64, 64), model=model).data
    n = len(bitstream.unpack(data).sections)
    bad = bytearray(data)
    bad[-3] ^= 0x10
    with pytest.raises(nc.errors.CorruptFileError, match=f"section {n} of {n}"):
        nc.decode(bytes(bad))


@pytest.mark.parametrize("model", SHIPPED)
def test_forged_later_section_with_valid_crc_is_caught(photo, model):
    c = bitstream.unpack(nc.encode_image(crop(photo, 128, 128), model=model).data)
    sections = list(c.sections)
    last = bytearray(sections[-1])
    last[len(last) // 2] ^= 0x5A
    sections[-1] = bytes(last)
    with pytest.raises(nc.errors.BitstreamError):
        nc.decode(bitstream.pack(c.header, sections))


@pytest.mark.parametrize("model", SHIPPED)
def test_cli_encode_decode_with_model(tmp_path, model):
    from PIL import Image

    from .conftest import SAMPLES

    src = tmp_path / "in.png"
    Image.open(SAMPLES / "chelsea.png").convert("RGB").crop((0, 0, 90, 70)).save(src)
    res = run_cli("encode", str(src), "-o", str(tmp_path / "x.ncf"), "--model", model, "--verify")
    assert res.returncode == 0, res.stderr
    info = json.loads(run_cli("info", str(tmp_path / "x.ncf"), "--json").stdout)
    assert info["model"] == model
    res = run_cli("decode", str(tmp_path / "x.ncf"), "-o", str(tmp_path / "out.png"))
    assert res.returncode == 0, res.stderr
    assert Image.open(tmp_path / "out.png").size == (90, 70)
