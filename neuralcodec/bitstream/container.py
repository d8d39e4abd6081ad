"""Container format v1 (normative spec: docs/bitstream.md). Pure bytes: no torch, no models.

Layout, all integers little-endian::

    magic b"\\x89NCF" | u8 major | u8 minor | u16 header_len | header[header_len] | u32 crc32(all before)
    then section_count coded sections, then (1.1) metadata_count metadata sections, each:
        u32 length | u32 crc32(payload) | payload[length]

Version 1.1 appends to the 1.0 header ``u8 metadata_count`` and a 16-byte *binding digest*
(BLAKE2b-128 of the file's bytes before that field and all its section bytes), so header fields
(quality, size, padding, digests) cannot change without the reader noticing, even where the CRCs
were recomputed. The reader validates every length and range before it allocates or decodes
anything, and accepts only what the writer produces (canonical files).
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from dataclasses import dataclass, field

from ..errors import (
    CorruptFileError,
    InvalidHeaderError,
    NotNcfError,
    TruncatedFileError,
    UnsupportedVersionError,
)

MAGIC = b"\x89NCF"
VERSION = (1, 1)  # what the writer produces; the reader takes every 1.x
MAX_SIDE = 32768  # largest height or width accepted
MAX_PIXELS = 1 << 26  # largest height * width accepted (8192 x 8192, 67 Mpixel)
# Largest image a decoder decodes unless told otherwise (the spirit of Pillow's MAX_IMAGE_PIXELS):
# 48 Mi pixels = every photo up to a 48-Mpixel phone's 8064 x 6048. Not a format rule.
DEFAULT_MAX_PIXELS = 48 << 20
MAX_SECTIONS = 64
MAX_HEADER = 1024
MAX_FRAMES = 1  # v1 files hold one image; video adds a frame index in a later version
METADATA_KINDS = {1: "icc", 2: "exif", 3: "xmp"}  # metadata section kind byte -> name
METADATA_VERSION = 1  # layout of a metadata section's payload
MAX_METADATA = 1 << 22  # bytes of one metadata item (4 MiB)
_MODEL_ID = re.compile(rb"[a-z0-9][a-z0-9._-]{0,63}")
_PREFIX = struct.Struct("<4sBBH")
_FIXED = struct.Struct("<32sIIIBBHHI16s16sH")  # after the model id
_V11 = struct.Struct("<B16s")  # after the 1.0 fields: metadata_count, binding digest
_BINDING = b"ncf-binding-1.1"  # BLAKE2b personalization of the binding digest


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
    sections: list[bytes]  # the coded sections; each is a Section (bytes with a .label) when unpacked
    version: tuple[int, int] = VERSION
    metadata: dict[str, bytes] = field(default_factory=dict)  # "icc" / "exif" / "xmp" -> bytes


class Section(bytes):
    """A section payload that knows its place in the file, so errors can name it."""

    label: str = "coded section"


def _binding(head_before_field: bytes | memoryview, section_bytes: bytes | memoryview) -> bytes:
    h = hashlib.blake2b(digest_size=16, person=_BINDING)
    h.update(head_before_field)
    h.update(section_bytes)
    return h.digest()


def _metadata_payload(kind: str, data: bytes) -> bytes:
    code = {v: k for k, v in METADATA_KINDS.items()}.get(kind)
    if code is None:
        raise ValueError(f"unknown metadata kind {kind!r} (one of {', '.join(METADATA_KINDS.values())})")
    if not (1 <= len(data) <= MAX_METADATA):
        raise ValueError(f"{kind} metadata must hold 1..{MAX_METADATA} bytes, got {len(data)}")
    return bytes([code, METADATA_VERSION]) + data


def _framed(payload: bytes) -> bytes:
    return struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


def pack(header: Header, sections: list[bytes], metadata: dict[str, bytes] | None = None,
         minor: int = VERSION[1]) -> bytes:
    """Serialize a header, its coded sections and optional metadata (``"icc"``, ``"exif"``,
    ``"xmp"`` -> bytes) into one file. ``minor=0`` writes the 1.0 layout (no metadata, no binding)."""
    header.validate()
    if not (1 <= len(sections) <= MAX_SECTIONS):
        raise ValueError(f"a file holds 1..{MAX_SECTIONS} sections, got {len(sections)}")
    if minor not in (0, 1):
        raise ValueError("this writer produces format 1.0 or 1.1")
    order = {v: k for k, v in METADATA_KINDS.items()}
    meta = [_metadata_payload(k, metadata[k]) for k in sorted(metadata or {}, key=lambda k: order.get(k, 99))]
    if meta and minor == 0:
        raise ValueError("format 1.0 has no metadata sections")
    body = b"".join(_framed(s) for s in [*sections, *meta])
    fields = header.pack(len(sections))
    if minor == 0:
        head = _PREFIX.pack(MAGIC, 1, 0, len(fields)) + fields
    else:
        before = _PREFIX.pack(MAGIC, 1, minor, len(fields) + _V11.size) + fields + bytes([len(meta)])
        head = before + _binding(before, body)
    return head + struct.pack("<I", zlib.crc32(head)) + body


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
    header, n_sections, n_meta, binding_at = _parse_header(bytes(view[_PREFIX.size : end]), minor)
    start = pos = end + 4
    payloads = []
    total = n_sections + n_meta
    for i in range(total):
        if len(data) < pos + 8:
            raise TruncatedFileError(f"file is truncated before section {i + 1} of {total}")
        length, crc = struct.unpack_from("<II", data, pos)
        pos += 8
        if length > len(data) - pos:
            raise TruncatedFileError(
                f"file is truncated: section {i + 1} of {total} needs {length} bytes, {len(data) - pos} remain"
            )
        payload = Section(view[pos : pos + length])
        payload.label = f"section {i + 1} of {total}"
        if zlib.crc32(payload) != crc:
            raise CorruptFileError(f"section {i + 1} of {total} checksum mismatch: the file is damaged")
        payloads.append(payload)
        pos += length
    if pos != len(data):
        raise CorruptFileError(f"{len(data) - pos} unexpected bytes after the last section")
    if binding_at is not None:
        at = _PREFIX.size + binding_at
        if _binding(view[:at], view[start:]) != bytes(view[at : at + 16]):
            raise CorruptFileError(
                "the file does not match its binding digest: it was altered after encoding (header fields "
                "or sections changed and their checksums recomputed) or damaged"
            )
    metadata = _parse_metadata(payloads[n_sections:], minor)
    return Container(header, payloads[:n_sections], (major, minor), metadata)


def _parse_header(body: bytes, minor: int) -> tuple[Header, int, int, int | None]:
    """Fields of a 1.x header: the header, section count, metadata count and the binding digest's
    offset in ``body`` (None in 1.0). Fields of a minor newer than 1.1 after the binding are skipped."""
    if not body:
        raise InvalidHeaderError("empty header")
    n = body[0]
    base = 1 + n + _FIXED.size
    if len(body) < base:
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
    if minor == 0:
        if len(body) != base:
            raise InvalidHeaderError(f"a 1.0 header holds {base} bytes, this one {len(body)}")
        return header, n_sections, 0, None
    if len(body) < base + _V11.size or (minor == 1 and len(body) != base + _V11.size):
        raise InvalidHeaderError(f"a 1.{minor} header cannot hold {len(body)} bytes")
    n_meta = body[base]
    if n_meta > len(METADATA_KINDS):
        raise InvalidHeaderError(f"metadata section count {n_meta} exceeds {len(METADATA_KINDS)}")
    return header, n_sections, n_meta, base + 1


def _parse_metadata(payloads: list[bytes], minor: int) -> dict[str, bytes]:
    """Metadata sections: kinds known and strictly ascending, layout version 1, 1..4 MiB of data.
    A reader of 1.1 skips kinds and layouts it does not know only in files of a newer minor."""
    out: dict[str, bytes] = {}
    last = 0
    for p in payloads:
        if len(p) < 3 or len(p) > 2 + MAX_METADATA:
            raise CorruptFileError(f"{p.label}: metadata section of impossible length {len(p)}")
        kind, version = p[0], p[1]
        if kind <= last:
            raise CorruptFileError(f"{p.label}: metadata sections out of order or repeated")
        last = kind
        if kind in METADATA_KINDS and version == METADATA_VERSION:
            out[METADATA_KINDS[kind]] = bytes(p[2:])
        elif minor == 1:
            raise CorruptFileError(f"{p.label}: unknown metadata kind {kind} or layout version {version}")
    return out
