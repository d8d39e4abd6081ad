"""The container: round trip, and one documented error per kind of damage."""

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


def test_file_layout_matches_spec():
    data = packed()
    assert data[:4] == b"\x89NCF" and data[4:6] == bytes([1, 0])
    hlen = struct.unpack_from("<H", data, 6)[0]
    assert hlen == 1 + len("mean-scale-hyperprior") + 32 + 4 * 3 + 2 + 2 * 2 + 4 + 16 + 16 + 2
    assert len(data) == 8 + hlen + 4 + sum(8 + len(s) for s in SECTIONS)


def test_wrong_magic():
    with pytest.raises(NotNcfError):
        bitstream.unpack(b"\x89PNG" + packed()[4:])
    with pytest.raises(NotNcfError):
        bitstream.unpack(b"")


def test_future_major_version_refused():
    data = bytearray(packed())
    data[4] = 2
    with pytest.raises(UnsupportedVersionError, match="2.0"):
        bitstream.unpack(bytes(data))


def test_newer_minor_with_longer_header_is_read():
    data = reheader(packed(), lambda b: (b + b"future-field", b"\x89NCF\x01\x07"))
    c = bitstream.unpack(data)
    assert c.header == HEADER and c.version == (1, 7)


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
