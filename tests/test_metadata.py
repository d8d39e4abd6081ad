"""Inputs as users have them: EXIF orientation applied on encode; the ICC profile kept by default,
EXIF and XMP behind ``metadata=`` / ``--metadata``, carried in the file and written back on decode."""

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

import neuralcodec as nc
from neuralcodec import bitstream
from neuralcodec.errors import InputError
from neuralcodec.io import save_image
from neuralcodec.io.images import ColorPolicyWarning, MetadataWarning, load_image, metadata_kinds

from .conftest import run_cli

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
LAB = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


def two_colour(w: int = 48, h: int = 32) -> Image.Image:
    """Left half red, right half blue: which way it was rotated is plain to see."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2, 0] = 255
    a[:, w // 2 :, 2] = 255
    return Image.fromarray(a)


def phone_jpeg(path, orientation: int = 6) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "PhoneMaker"  # Make
    two_colour().save(path, "JPEG", quality=95, exif=exif.tobytes(), icc_profile=SRGB, xmp=XMP)


def test_exif_orientation_6_is_applied(tmp_path):
    phone_jpeg(tmp_path / "p.jpg")
    img = load_image(tmp_path / "p.jpg")
    assert img.rgb.shape == (48, 32, 3)  # rotated 90 degrees clockwise: stored 48x32 -> shown 32x48
    top, bottom = img.rgb[2, 16].astype(int), img.rgb[-3, 16].astype(int)
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]  # the left (red) half is now on top
    enc = nc.encode_image(img)
    assert (enc.header.width, enc.header.height) == (32, 48)


def test_orientation_tag_is_removed_from_kept_exif(tmp_path):
    phone_jpeg(tmp_path / "p.jpg")
    exif = load_image(tmp_path / "p.jpg").metadata["exif"]
    parsed = Image.Exif()
    parsed.load(b"Exif\x00\x00" + exif)
    assert 0x0112 not in parsed and parsed[0x010F] == "PhoneMaker"


def test_icc_only_by_default(tmp_path):
    phone_jpeg(tmp_path / "p.jpg")
    c = bitstream.unpack(nc.encode_image(tmp_path / "p.jpg").data)
    assert c.metadata == {"icc": SRGB}


def test_no_metadata_section_when_asked_for_none(tmp_path):
    phone_jpeg(tmp_path / "p.jpg")
    assert bitstream.unpack(nc.encode_image(tmp_path / "p.jpg", metadata="none").data).metadata == {}


def test_all_metadata_round_trip_to_every_output_format(tmp_path):
    phone_jpeg(tmp_path / "p.jpg")
    dec = nc.decode(nc.encode_image(tmp_path / "p.jpg", metadata="all").data)
    assert set(dec.metadata) == {"icc", "exif", "xmp"} and dec.metadata["xmp"] == XMP
    for ext in ("png", "jpg", "webp"):
        out = tmp_path / f"out.{ext}"
        save_image(dec.rgb, out, dec.header.channels, dec.metadata)
        with Image.open(out) as im:
            assert im.info["icc_profile"] == SRGB, ext
            assert im.getexif()[0x010F] == "PhoneMaker", ext
            xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
            assert (xmp.encode() if isinstance(xmp, str) else xmp) == XMP, ext


def test_format_without_room_for_metadata_says_so(tmp_path):
    with pytest.warns(MetadataWarning, match="BMP output cannot hold icc"):
        save_image(np.zeros((4, 4, 3), np.uint8), tmp_path / "x.bmp", 3, {"icc": SRGB})
    assert (tmp_path / "x.bmp").exists()


def test_profile_that_does_not_describe_the_pixels_is_dropped():
    buf = io.BytesIO()
    two_colour().save(buf, "PNG", icc_profile=LAB)
    with pytest.warns(ColorPolicyWarning, match="ICC profile for Lab"):
        img = load_image(Image.open(io.BytesIO(buf.getvalue())))
    assert "icc" not in img.metadata


def test_grey_source_keeps_a_grey_profile(tmp_path):
    grey = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    grey = grey[:16] + b"GRAY" + grey[20:]  # only the colour-space field is consulted
    two_colour().convert("L").save(tmp_path / "g.png", icc_profile=grey)
    assert load_image(tmp_path / "g.png").metadata == {"icc": grey}


def test_metadata_option_spelling():
    assert metadata_kinds("none") == frozenset() and metadata_kinds("all") == {"icc", "exif", "xmp"}
    assert metadata_kinds("icc, XMP") == {"icc", "xmp"}
    with pytest.raises(InputError, match="gps"):
        metadata_kinds("icc,gps")


def test_cli_writes_kept_metadata_back(tmp_path):
    phone_jpeg(tmp_path / "p.jpg")
    ncf, out = tmp_path / "p.ncf", tmp_path / "out.jpg"
    res = run_cli("encode", str(tmp_path / "p.jpg"), "-o", str(ncf), "--metadata", "exif,icc", "-q")
    assert res.returncode == 0, res.stderr
    assert run_cli("decode", str(ncf), "-o", str(out), "-q").returncode == 0
    with Image.open(out) as im:
        assert im.size == (32, 48) and im.info["icc_profile"] == SRGB and im.getexif()[0x010F] == "PhoneMaker"
        assert "xmp" not in im.info


def test_cli_refuses_unknown_metadata(tmp_path):
    phone_jpeg(tmp_path / "p.jpg")
    res = run_cli("encode", str(tmp_path / "p.jpg"), "--metadata", "gps")
    assert res.returncode != 0 and res.stderr.count("\n") == 1 and "gps" in res.stderr
