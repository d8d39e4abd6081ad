"""The Pillow plugin, through Pillow's own API: Image.open / Image.save of .ncf files."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

import neuralcodec
from neuralcodec.codec import DecodedImage, decode, encode_image
from neuralcodec.models import DEFAULT_MODEL

from .conftest import ROOT, crop


@pytest.fixture(scope="module")
def small(photo) -> Image.Image:
    return crop(photo, 64, 48, 100, 100)


@pytest.fixture(scope="module")
def ncf(small, tmp_path_factory):
    path = tmp_path_factory.mktemp("ncf") / "small.ncf"
    small.save(path, quality=1.0)
    return path


def test_save_writes_the_same_file_as_the_api(small, ncf):
    assert ncf.read_bytes() == encode_image(small, quality=1.0).data


def test_save_with_format_name_and_model(small, tmp_path):
    out = tmp_path / "x.bin"
    small.save(out, format="NCF", quality=0.5, model="mean-scale-hyperprior")
    assert neuralcodec.read_header(out.read_bytes()).quality == 0.5


def test_open_decodes_the_pixels_decode_returns(ncf):
    with Image.open(ncf) as im:
        assert (im.format, im.mode, im.size) == ("NCF", "RGB", (64, 48))
        assert np.array_equal(np.asarray(im), decode(ncf.read_bytes()).rgb)


def test_info_carries_the_header_fields(ncf):
    with Image.open(ncf) as im:
        assert {k: im.info[k] for k in ("model", "quality", "version", "width", "height")} == {
            "model": DEFAULT_MODEL, "quality": 1.0, "version": "1.1", "width": 64, "height": 48}
        assert "icc_profile" not in im.info


def test_icc_profile_round_trips(small, tmp_path):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    small.save(tmp_path / "icc.ncf", quality=1.0, icc_profile=icc)
    with Image.open(tmp_path / "icc.ncf") as im:
        assert im.info["icc_profile"] == icc


def test_grey_image_opens_as_mode_L(small, tmp_path):
    small.convert("L").save(tmp_path / "grey.ncf", quality=1.0)
    with Image.open(tmp_path / "grey.ncf") as im:
        assert im.mode == "L" and np.asarray(im).shape == (48, 64)


def test_damaged_file_raises_oserror_with_our_message(ncf, tmp_path):
    data = bytearray(ncf.read_bytes())
    data[-5] ^= 0xFF
    (tmp_path / "bad.ncf").write_bytes(bytes(data))
    with pytest.raises(OSError, match="damaged .ncf file: .*checksum mismatch"):
        Image.open(tmp_path / "bad.ncf")


def test_truncated_file_raises_oserror(ncf, tmp_path):
    (tmp_path / "cut.ncf").write_bytes(ncf.read_bytes()[:40])
    with pytest.raises(OSError, match="truncated"):
        Image.open(tmp_path / "cut.ncf")


def test_other_bytes_named_ncf_are_unidentified(tmp_path):
    (tmp_path / "fake.ncf").write_bytes(b"not an image at all")
    with pytest.raises(UnidentifiedImageError):
        Image.open(tmp_path / "fake.ncf")


def test_decoding_to_ncf_through_save_image_is_refused(tmp_path):
    from neuralcodec.errors import InputError
    from neuralcodec.io import save_image

    with pytest.raises(InputError, match="unknown image format"):
        save_image(np.zeros((4, 4, 3), np.uint8), tmp_path / "x.ncf")


def test_decoded_image_shows_in_notebooks(ncf):
    dec = decode(ncf.read_bytes())
    assert isinstance(dec, DecodedImage)
    png = dec._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(np.asarray(Image.open(__import__("io").BytesIO(png))), dec.rgb)


def test_open_is_lazy_and_imports_no_torch(ncf):
    code = f"""
import json, sys
import numpy as np
from PIL import Image
import neuralcodec
im = Image.open({str(ncf)!r})
size, before = im.size, "torch" in sys.modules
px = np.asarray(im)
same = bool(np.array_equal(px, neuralcodec.decode(open({str(ncf)!r}, "rb").read()).rgb))
print(json.dumps({{"size": list(size), "torch_before_load": before, "torch_after": "torch" in sys.modules, "same": same}}))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout.splitlines()[-1]) == {
        "size": [64, 48], "torch_before_load": False, "torch_after": True, "same": True}


def test_import_neuralcodec_registers_without_numpy():
    code = "import sys, neuralcodec; from PIL import Image; print(Image.EXTENSION['.ncf'], 'numpy' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert res.stdout.split() == ["NCF", "False"], res.stderr[-2000:]
