"""Container format v1 (normative spec: docs/bitstream.md). Pure bytes: no torch, no models.

Layout, all integers little-endian::

    magic b"\\x89NCF" | u8 major | u8 minor | u16 header_len | header[header_len] | u32 crc32(all before)
    then section_count times:  u32 length | u32 crc32(payload) | payload[length]

The reader validates every length and range before it allocates or decodes anything.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

from ..errors import (
    CorruptFileError,
    InvalidHeaderError,
    NotNcfError,
    TruncatedFileError,
    UnsupportedVersionError,
)

MAGIC = b"\x89NCF"
VERSION = (1, 0)
MAX_SIDE = 32768  # largest height or width accepted
MAX_PIXELS = 1 << 26  # largest height * width accepted (8192 x 8192, 67 Mpixel)
MAX_SECTIONS = 64
MAX_HEADER = 1024
MAX_FRAMES = 1  # v1 files hold one image; video adds a frame index in a later version
_MODEL_ID = re.compile(rb"[a-z0-9][a-z0-9._-]{0,63}")
_PREFIX = struct.Struct("<4sBBH")
_FIXED = struct.Struct("<32sIIIBBHHI16s16sH")  # after the model id


@dataclass(frozen=True)
class Header:
    """Everything a decoder needs besides the section payloads."""

    model_id: str
    weights_digest: bytes  # SHA-256 of the weights file the encoder used
    quality_milli: int  # quality * 1000, an integer so it round-trips exactly
    height: int  # original image size, before padding
    width: int
    channels: int  # of the original image: 1 (grey) or 3 (colour)
    bit_depth: int  # of the original image: 8 or 16
    pad_bottom: int  # rows / columns of edge padding added by the encoder
    pad_right: int
    frames: int
    latent_digest: bytes  # BLAKE2b-128 of all quantized latents, see models/base.py
    image_digest: bytes  # BLAKE2b-128 of the encoder's 8-bit reconstruction

    @property
    def quality(self) -> float:
        return self.quality_milli / 1000.0

    def validate(self) -> None:
        """Raise InvalidHeaderError if any field is outside its allowed range."""
        if not _MODEL_ID.fullmatch(self.model_id.encode("ascii", "replace")):
            raise InvalidHeaderError(f"invalid model id {self.model_id!r}")
        if len(self.weights_digest) != 32 or len(self.latent_digest) != 16 or len(self.image_digest) != 16:
            raise InvalidHeaderError("digest fields have the wrong length")
        if not (1 <= self.height <= MAX_SIDE and 1 <= self.width <= MAX_SIDE):
            raise InvalidHeaderError(
                f"image size {self.width}x{self.height} is outside 1..{MAX_SIDE} pixels per side"
            )
        if self.height * self.width > MAX_PIXELS:
            raise InvalidHeaderError(f"image size {self.width}x{self.height} exceeds {MAX_PIXELS} pixels")
        if self.channels not in (1, 3) or self.bit_depth not in (8, 16):
            raise InvalidHeaderError(f"unsupported channels/bit depth {self.channels}/{self.bit_depth}")
        if self.pad_bottom > 255 or self.pad_right > 255:
            raise InvalidHeaderError("padding field out of range")
        if not (1 <= self.frames <= MAX_FRAMES):
            raise InvalidHeaderError(f"frame count {self.frames} not supported by format 1.x images")
        if self.quality_milli > 1_000_000:
            raise InvalidHeaderError("quality field out of range")

    def pack(self, n_sections: int) -> bytes:
        mid = self.model_id.encode("ascii")
        return bytes([len(mid)]) + mid + _FIXED.pack(
            self.weights_digest, self.quality_milli, self.height, self.width, self.channels,
            self.bit_depth, self.pad_bottom, self.pad_right, self.frames, self.latent_digest,
            self.image_digest, n_sections,
        )


@dataclass(frozen=True)
class Container:
    header: Header
    sections: list[bytes]
    version: tuple[int, int] = VERSION


def pack(header: Header, sections: list[bytes]) -> bytes:
    """Serialize a header and its sections into one file's bytes."""
    header.validate()
    if not (1 <= len(sections) <= MAX_SECTIONS):
        raise ValueError(f"a file holds 1..{MAX_SECTIONS} sections, got {len(sections)}")
    body = header.pack(len(sections))
    head = _PREFIX.pack(MAGIC, *VERSION, len(body)) + body
    out = [head, struct.pack("<I", zlib.crc32(head))]
    for s in sections:
        out.append(struct.pack("<II", len(s), zlib.crc32(s)))
        out.append(s)
    return b"".join(out)


def unpack(data: bytes) -> Container:
    """Parse and validate a file; raises a BitstreamError subclass on any problem."""
    view = memoryview(data)
    if len(data) < 4 or bytes(view[:4]) != MAGIC:
        raise NotNcfError("not a neuralcodec file (wrong magic bytes)")
    if len(data) < _PREFIX.size:
        raise TruncatedFileError("file is truncated inside its header")
    _, major, minor, hlen = _PREFIX.unpack_from(data)
    if major != VERSION[0]:
        raise UnsupportedVersionError(
            f"file format version {major}.{minor} is not supported (this reader handles {VERSION[0]}.x)"
        )
    if hlen > MAX_HEADER:
        raise InvalidHeaderError(f"header length {hlen} exceeds {MAX_HEADER} bytes")
    end = _PREFIX.size + hlen
    if len(data) < end + 4:
        raise TruncatedFileError("file is truncated inside its header")
    (crc,) = struct.unpack_from("<I", data, end)
    if crc != zlib.crc32(view[:end]):
        raise CorruptFileError("header checksum mismatch: the file is damaged")
    header, n_sections = _parse_header(bytes(view[_PREFIX.size : end]))
    pos = end + 4
    sections = []
    for i in range(n_sections):
        if len(data) < pos + 8:
            raise TruncatedFileError(f"file is truncated before section {i + 1} of {n_sections}")
        length, crc = struct.unpack_from("<II", data, pos)
        pos += 8
        if length > len(data) - pos:
            raise TruncatedFileError(
                f"file is truncated: section {i + 1} of {n_sections} needs {length} bytes, {len(data) - pos} remain"
            )
        payload = bytes(view[pos : pos + length])
        if zlib.crc32(payload) != crc:
            raise CorruptFileError(f"section {i + 1} of {n_sections} checksum mismatch: the file is damaged")
        sections.append(payload)
        pos += length
    if pos != len(data):
        raise CorruptFileError(f"{len(data) - pos} unexpected bytes after the last section")
    return Container(header, sections, (major, minor))


def _parse_header(body: bytes) -> tuple[Header, int]:
    """Fields of a 1.x header; bytes after the 1.0 fields (added by a newer minor) are skipped."""
    if not body:
        raise InvalidHeaderError("empty header")
    n = body[0]
    if len(body) < 1 + n + _FIXED.size:
        raise InvalidHeaderError("header is shorter than its fields")
    try:
        model_id = body[1 : 1 + n].decode("ascii")
    except UnicodeDecodeError:
        raise InvalidHeaderError("model id is not ASCII") from None
    (wd, q, h, w, c, bd, pb, pr, frames, ld, idg, n_sections) = _FIXED.unpack_from(body, 1 + n)
    header = Header(model_id, wd, q, h, w, c, bd, pb, pr, frames, ld, idg)
    header.validate()
    if not (1 <= n_sections <= MAX_SECTIONS):
        raise InvalidHeaderError(f"section count {n_sections} outside 1..{MAX_SECTIONS}")
    return header, n_sections
