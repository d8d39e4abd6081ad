"""The container: round trip, and one documented error per kind of damage."""

import hashlib
import struct
import zlib

import pytest

from neuralcodec import bitstream
from neuralcodec.errors import (
    BitstreamError,
    CorruptFileError,
    InvalidHeaderError,
    NotNcfError,
    TruncatedFileError,
    UnsupportedVersionError,
)

HEADER = bitstream.Header("mean-scale-hyperprior", bytes(range(32)), 3000, 65, 63, 3, 8, 63, 1, 1, bytes(16), b"i" * 16)
SECTIONS = [b"zz" * 10, b"", b"y" * 300]


def packed() -> bytes:
    return bitstream.pack(HEADER, SECTIONS)


def reheader(data: bytes, mutate) -> bytes:
    """Rewrite the header body with ``mutate`` and fix the header CRC, so only validation can object."""
    hlen = struct.unpack_from("<H", data, 6)[0]
    body = bytearray(data[8 : 8 + hlen])
    body, extra = mutate(body)
    head = data[:6] + struct.pack("<H", len(body)) + bytes(body)
    head = bytearray(head)
    head[:6] = extra or head[:6]
    return bytes(head) + struct.pack("<I", zlib.crc32(bytes(head))) + data[8 + hlen + 4 :]


def section_starts(data: bytes) -> list[int]:
    hlen = struct.unpack_from("<H", data, 6)[0]
    pos, out = 8 + hlen + 4, []
    for s in SECTIONS:
        out.append(pos)
        pos += 8 + len(s)
    return out + [pos]


def test_round_trip():
    c = bitstream.unpack(packed())
    assert c.header == HEADER and c.sections == SECTIONS and c.version == bitstream.VERSION


V10_FIELDS = 1 + len("mean-scale-hyperprior") + 32 + 4 * 3 + 2 + 2 * 2 + 4 + 16 + 16 + 2


def test_file_layout_matches_spec():
    data = packed()
    assert data[:4] == b"\x89NCF" and data[4:6] == bytes([1, 1])
    hlen = struct.unpack_from("<H", data, 6)[0]
    assert hlen == V10_FIELDS + 1 + 16  # 1.1: metadata count, binding digest
    assert len(data) == 8 + hlen + 4 + sum(8 + len(s) for s in SECTIONS)
    binding = hashlib.blake2b(data[: 8 + hlen - 16] + data[8 + hlen + 4 :], digest_size=16, person=b"ncf-binding-1.1")
    assert data[8 + hlen - 16 : 8 + hlen] == binding.digest()


def test_version_1_0_layout_is_still_read():
    data = bitstream.pack(HEADER, SECTIONS, minor=0)
    assert data[4:6] == bytes([1, 0]) and struct.unpack_from("<H", data, 6)[0] == V10_FIELDS
    c = bitstream.unpack(data)
    assert c.header == HEADER and c.sections == SECTIONS and c.version == (1, 0) and c.metadata == {}


def test_wrong_magic():
    with pytest.raises(NotNcfError):
        bitstream.unpack(b"\x89PNG" + packed()[4:])
    with pytest.raises(NotNcfError):
        bitstream.unpack(b"")


def test_future_major_version_refused():
    data = bytearray(packed())
    data[4] = 2
    with pytest.raises(UnsupportedVersionError, match="2.1"):
        bitstream.unpack(bytes(data))


def rebind(data: bytes) -> bytes:
    """Recompute a 1.1 file's binding digest and header CRC, as a writer of the file would."""
    hlen = struct.unpack_from("<H", data, 6)[0]
    at = 8 + V10_FIELDS + 1
    body = data[8 + hlen + 4 :]
    head = data[:at] + hashlib.blake2b(data[:at] + body, digest_size=16, person=b"ncf-binding-1.1").digest()
    head += data[at + 16 : 8 + hlen]
    return head + struct.pack("<I", zlib.crc32(head)) + body


def test_newer_minor_with_longer_header_is_read():
    data = rebind(reheader(packed(), lambda b: (b + b"future-field", b"\x89NCF\x01\x07")))
    c = bitstream.unpack(data)
    assert c.header == HEADER and c.version == (1, 7)


def test_header_longer_than_its_minor_is_refused():
    with pytest.raises(InvalidHeaderError, match="1.1 header"):
        bitstream.unpack(rebind(reheader(packed(), lambda b: (b + b"x", None))))
    with pytest.raises(InvalidHeaderError, match="1.0 header"):
        bitstream.unpack(reheader(bitstream.pack(HEADER, SECTIONS, minor=0), lambda b: (b + b"x", None)))


def quality_edit(body):
    n = body[0]
    struct.pack_into("<I", body, 1 + n + 32, 6000)
    return body, None


def test_edited_header_field_breaks_the_binding():
    """Quality edited and the header CRC recomputed: 1.1 notices, before any decoding."""
    with pytest.raises(CorruptFileError, match="binding digest"):
        bitstream.unpack(reheader(packed(), quality_edit))
    old = bitstream.unpack(reheader(bitstream.pack(HEADER, SECTIONS, minor=0), quality_edit))
    assert old.header.quality_milli == 6000  # 1.0 has no binding: the codec must catch what it can


def test_forged_section_with_recomputed_crc_breaks_the_binding():
    data = bytearray(packed())
    pos = section_starts(bytes(data))[2]
    data[pos + 8] ^= 1
    struct.pack_into("<I", data, pos + 4, zlib.crc32(bytes(data[pos + 8 : pos + 8 + len(SECTIONS[2])])))
    with pytest.raises(CorruptFileError, match="binding digest"):
        bitstream.unpack(bytes(data))


def test_sections_know_their_place():
    c = bitstream.unpack(packed())
    assert [s.label for s in c.sections] == ["section 1 of 3", "section 2 of 3", "section 3 of 3"]


META = {"xmp": b"<x:xmpmeta/>", "icc": b"\x00" * 128, "exif": b"II*\x00\x08\x00\x00\x00\x00\x00"}


def test_metadata_round_trip_after_the_coded_sections():
    data = bitstream.pack(HEADER, SECTIONS, META)
    c = bitstream.unpack(data)
    assert c.sections == SECTIONS and c.metadata == META
    assert data.endswith(bytes([3, 1]) + META["xmp"])  # kinds in ascending order: icc, exif, xmp
    assert len(data) == len(packed()) + sum(8 + 2 + len(v) for v in META.values())


def test_metadata_needs_version_1_1():
    with pytest.raises(ValueError, match="1.0"):
        bitstream.pack(HEADER, SECTIONS, META, minor=0)


def test_unknown_metadata_kind_is_refused_on_write():
    with pytest.raises(ValueError, match="unknown metadata"):
        bitstream.pack(HEADER, SECTIONS, {"gps": b"x"})


def _recount_meta(data: bytes, payloads: list[bytes]) -> bytes:
    """A 1.1 file with SECTIONS and these raw metadata payloads, CRCs and binding recomputed."""
    base = bitstream.pack(HEADER, SECTIONS)
    hlen = struct.unpack_from("<H", base, 6)[0]
    head = bytearray(base[: 8 + hlen])
    head[8 + V10_FIELDS] = len(payloads)
    body = base[8 + hlen + 4 :] + b"".join(struct.pack("<II", len(p), zlib.crc32(p)) + p for p in payloads)
    return rebind(bytes(head) + bytes(4) + body)


@pytest.mark.parametrize("payloads", [
    [bytes([2, 1]) + b"exif", bytes([1, 1]) + b"icc"],  # out of order
    [bytes([1, 1]) + b"a", bytes([1, 1]) + b"b"],  # repeated
    [bytes([9, 1]) + b"what"],  # unknown kind
    [bytes([1, 2]) + b"icc"],  # unknown layout version
    [bytes([1, 1])],  # empty
])
def test_non_canonical_metadata_is_refused(payloads):
    with pytest.raises(CorruptFileError, match="metadata"):
        bitstream.unpack(_recount_meta(packed(), payloads))


def test_canonical_metadata_helper_builds_valid_files():
    c = bitstream.unpack(_recount_meta(packed(), [bytes([1, 1]) + b"icc", bytes([3, 1]) + b"xmp"]))
    assert c.metadata == {"icc": b"icc", "xmp": b"xmp"}


@pytest.mark.parametrize("cut_index", range(len(SECTIONS) + 1))
def test_truncation_at_every_section_boundary(cut_index):
    data = packed()
    for cut in (section_starts(data)[cut_index] - 1, section_starts(data)[cut_index] + 4):
        if cut < len(data):
            with pytest.raises(TruncatedFileError):
                bitstream.unpack(data[:cut])


def test_truncation_anywhere_raises_bitstream_error():
    data = packed()
    for cut in range(len(data)):
        with pytest.raises(BitstreamError):
            bitstream.unpack(data[:cut])


def test_every_flipped_byte_is_detected():
    data = packed()
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x41
        with pytest.raises(BitstreamError):
            bitstream.unpack(bytes(bad))


def test_flipped_payload_names_the_section():
    data = bytearray(packed())
    data[section_starts(bytes(data))[2] + 8 + 5] ^= 1
    with pytest.raises(CorruptFileError, match="section 3 of 3"):
        bitstream.unpack(bytes(data))


def test_trailing_garbage():
    with pytest.raises(CorruptFileError, match="unexpected"):
        bitstream.unpack(packed() + b"\0")


def absurd_dims(body):
    n = body[0]
    struct.pack_into("<II", body, 1 + n + 32 + 4, 10**9, 10**9)
    return body, None


def test_absurd_dimensions_rejected_before_any_allocation():
    with pytest.raises(InvalidHeaderError, match="outside"):
        bitstream.unpack(reheader(packed(), absurd_dims))


def test_section_length_larger_than_file():
    data = bytearray(packed())
    struct.pack_into("<I", data, section_starts(bytes(data))[0], 0xFFFFFFF0)
    with pytest.raises(TruncatedFileError):
        bitstream.unpack(bytes(data))


def test_header_validation_on_write():
    with pytest.raises(InvalidHeaderError):
        bitstream.pack(bitstream.Header("Bad Id!", bytes(32), 1000, 1, 1, 3, 8, 0, 0, 1, bytes(16), bytes(16)), [b""])
