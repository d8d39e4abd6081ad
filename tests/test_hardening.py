"""What the decoder trusts and when it checks it (docs/bitstream.md): the pixel limit before any
symbol, the length rule before and after each section, the latent digest before the synthesis,
the shipped quality range, the 1.1 binding digest, and error messages that say what is known."""

import dataclasses
import struct
import zlib

import pytest

import neuralcodec as nc
from neuralcodec import bitstream
from neuralcodec.codec import DEFAULT_MAX_PIXELS
from neuralcodec.entropy import coder
from neuralcodec.errors import (
    CorruptFileError,
    InvalidHeaderError,
    LatentMismatchError,
    PixelLimitError,
    ReconstructionMismatchWarning,
)
from neuralcodec.models.weights import load_model

from .conftest import crop

MODEL = "mean-scale-hyperprior"  # the tests below count its two sections (hyper-latent, latent)
LOADED = load_model(MODEL)


@pytest.fixture(scope="module")
def small(photo) -> bytes:
    """A 64x64 file of MODEL, without an image digest (what `ncodec encode` writes)."""
    return nc.encode_image(crop(photo, 64, 64, 100, 60), model=MODEL).data


def rewrite(data: bytes, minor: int = 1, sections=None, **fields) -> bytes:
    """The file rewritten by a writer that recomputes every checksum (and the 1.1 binding)."""
    c = bitstream.unpack(data)
    return bitstream.pack(dataclasses.replace(c.header, **fields), sections or c.sections, minor=minor)


def crafted(height: int, width: int, n_sections: int = 2) -> bytes:
    """A CRC-valid file of MODEL claiming ``height`` x ``width`` with empty sections."""
    header = bitstream.Header(MODEL, LOADED.digest, int(LOADED.default_quality * 1000), height, width,
                              3, 8, 0, 0, 1, bytes(16), bytes(16))
    return bitstream.pack(header, [struct.pack("<I", 0)] * n_sections)


@pytest.fixture
def no_ans(monkeypatch):
    """Fail the test if any ANS data is decoded."""
    def refuse(*_):
        raise AssertionError("ANS decoding ran")

    monkeypatch.setattr(coder, "_AnsCoder", refuse)


@pytest.fixture
def no_synthesis(monkeypatch):
    def refuse(*_, **__):
        raise AssertionError("the synthesis ran")

    monkeypatch.setattr(type(LOADED.model), "reconstruct", refuse)
    monkeypatch.setattr(type(LOADED.model), "synthesize", refuse)


def test_default_pixel_limit_is_below_the_format_limit():
    assert DEFAULT_MAX_PIXELS == 48 * 2**20 <= bitstream.MAX_PIXELS


def test_pixel_limit_is_checked_before_any_symbol(small, no_ans):
    with pytest.raises(PixelLimitError, match="--max-pixels"):
        nc.decode(small, max_pixels=64 * 64 - 1)
    with pytest.raises(PixelLimitError, match="max_pixels"):
        nc.codec.decode_latent(small, max_pixels=100)


def test_large_claim_is_refused_by_the_default_limit(no_ans):
    with pytest.raises(PixelLimitError, match="8192x8192"):
        nc.decode(crafted(8192, 8192))


def test_pixel_limit_can_be_raised(small):
    assert nc.decode(small, max_pixels=64 * 64).rgb.shape == (64, 64, 3)
    assert nc.decode(small, max_pixels=None).rgb.shape == (64, 64, 3)


def test_empty_sections_claiming_8192_squared_fail_before_decoding(no_ans, no_synthesis):
    """The 146-byte file that used to run 49 s and grow 5 GB: refused by the length rule's bound."""
    with pytest.raises(CorruptFileError, match="section 1 of 2 is too short"):
        nc.decode(crafted(8192, 8192), max_pixels=None)


def test_latent_digest_is_checked_before_the_synthesis(small, no_synthesis):
    with pytest.raises(LatentMismatchError):
        nc.decode(rewrite(small, latent_digest=bytes(16)))


def test_truncated_section_is_caught_by_the_length_rule(photo):
    data = nc.encode_image(crop(photo, 128, 128), model=MODEL).data
    c = bitstream.unpack(data)
    y = c.sections[1]
    short = y[:4] + y[len(y) - (len(y) - 4) // 8 // 4 * 4 :]  # escape count + the last eighth of the words
    with pytest.raises(CorruptFileError, match="section 2 of 2"):
        nc.decode(rewrite(data, sections=[c.sections[0], short]))


def test_extra_words_are_refused(small):
    c = bitstream.unpack(small)
    with pytest.raises(CorruptFileError, match="section 2 of 2"):
        nc.decode(rewrite(small, sections=[c.sections[0], c.sections[1] + b"\x01\x00\x00\x00"]))


def test_quality_outside_the_shipped_range_is_refused(small):
    lo, hi = LOADED.quality_range
    assert hi < 6.0 <= LOADED.model.levels  # the model's level count alone would let 6.0 through
    for minor in (0, 1):
        with pytest.raises(InvalidHeaderError, match=f"quality 6 is outside {lo:g}..{hi:g}"):
            nc.decode(rewrite(small, minor, quality_milli=6000))


def _edit_quality_keep_binding(data: bytes, quality_milli: int) -> bytes:
    """Edit the quality field and recompute only the header CRC (what a hex editor + CRC tool does)."""
    b = bytearray(data)
    n = b[8]
    struct.pack_into("<I", b, 8 + 1 + n + 32, quality_milli)
    hlen = struct.unpack_from("<H", b, 6)[0]
    struct.pack_into("<I", b, 8 + hlen, zlib.crc32(bytes(b[: 8 + hlen])))
    return bytes(b)


def test_edited_quality_of_a_1_1_file_is_detected(small, no_ans):
    lo, hi = LOADED.quality_range
    q = bitstream.unpack(small).header.quality_milli
    other = int(lo * 1000) if q != int(lo * 1000) else int(hi * 1000)
    assert bitstream.unpack(small).header.image_digest == bytes(16)  # no image digest to fall back on
    with pytest.raises(CorruptFileError, match="binding digest"):
        nc.decode(_edit_quality_keep_binding(small, other))


def test_version_1_0_files_decode_with_the_1_0_rules(small):
    old = rewrite(small, minor=0)
    assert old[4:6] == b"\x01\x00"
    assert (nc.decode(old).rgb == nc.decode(small).rgb).all()


def test_latent_mismatch_in_a_1_1_file_blames_the_encoder_not_damage(small):
    with pytest.raises(LatentMismatchError, match="intact.*different build, platform or device"):
        nc.decode(rewrite(small, latent_digest=bytes(16)))


def test_latent_mismatch_in_a_1_0_file_names_both_causes(small):
    with pytest.raises(LatentMismatchError, match="damaged in a way its checksums missed, or"):
        nc.decode(rewrite(small, minor=0, latent_digest=bytes(16)))


def test_image_digest_warning_does_not_claim_pixels_differ_slightly(photo):
    enc = nc.encode_image(crop(photo, 64, 64), reconstruct=True)
    for minor, says_field in ((1, False), (0, True)):
        with pytest.warns(ReconstructionMismatchWarning) as caught:
            nc.decode(rewrite(enc.data, minor, image_digest=b"\x01" * 16))
        msg = str(caught[0].message)
        assert "slightly" not in msg and "not bit-identical" in msg
        assert ("image-digest field" in msg) == says_field


def test_intact_file_decodes_without_warnings(photo, recwarn):
    enc = nc.encode_image(crop(photo, 64, 64), reconstruct=True)
    assert (nc.decode(enc.data).rgb == enc.rgb).all()
    assert not [w for w in recwarn if issubclass(w.category, ReconstructionMismatchWarning)]


def test_outputs_get_the_permissions_of_a_new_file(tmp_path):
    """Atomic writes go through mkstemp (mode 0600); the finished file gets 0666 minus the umask."""
    import os

    from neuralcodec.io.files import write_atomic

    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "a.ncf", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.ncf").stat().st_mode & 0o777 == 0o644
    (tmp_path / "a.ncf").chmod(0o600)  # a private file stays private when overwritten
    write_atomic(tmp_path / "a.ncf", b"y")
    assert (tmp_path / "a.ncf").stat().st_mode & 0o777 == 0o600
