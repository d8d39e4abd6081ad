"""Video container ``.ncv`` v1.1 (normative spec: docs/video.md). Pure bytes: no torch, no models.

Layout, integers little-endian, ``varint`` = unsigned LEB128::

    magic b"\x89NCV" | u8 major=1 | u8 minor | u16 header_len | header | u32 crc32(all before)
    record*   u8 0xF7 | u8 flags (bit 0: P-frame, bit 1: image digest present) | varint number
              | u8 n_sections | varint length[n_sections] | latent_digest[8] | image_digest[8]?
              | payloads | u32 crc32(record before this field)
    index     b"INDX" | u32 n | n x varint(record_size * 2 + is_P) | u32 crc32(index)
    trailer   u64 index_offset | u32 n | b"NCVE"

Records are written as frames are coded; the index and trailer come last. A reader seeks with
the index; without one (the writer stopped early) it scans records up to the last complete one.
Every length is checked against the file size before anything is allocated. Version 1.1 appends
a flags byte to the header (bit 0: scene cuts, any frame may be an I-frame); a file without flags
is written as 1.0, byte for byte what 1.0 encoders wrote.
"""

from __future__ import annotations

import os
import re
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import BinaryIO

from ..errors import CorruptFileError, InvalidHeaderError, NotNcfError, TruncatedFileError, UnsupportedVersionError

MAGIC = b"\x89NCV"
VERSION = (1, 1)  # the newest this reader handles; files without header flags are written as 1.0
SCENE_CUTS = 1  # header flag: frames beyond the GOP rule may be I-frames
MAX_SIDE = 32768
MAX_PIXELS = 1 << 26
MAX_FRAMES = 10_000_000
MAX_SECTIONS = 16
MAX_HEADER = 1024
_ID = re.compile(rb"[a-z0-9][a-z0-9.@_-]{0,63}")
_PREFIX = struct.Struct("<4sBBH")
_FIXED = struct.Struct("<IIIBBIIIII")  # quality_milli, width, height, pads, fps, time base, gop
_TRAILER = struct.Struct("<QI4s")
INDEX_TAG, END_TAG = b"INDX", b"NCVE"
RECORD_MARKER = 0xF7
_P_FRAME, _HAS_IMAGE_DIGEST = 1, 2
DIGEST = 8  # bytes of each digest stored per frame
MIN_RECORD = 2 + 1 + 1 + 1 + DIGEST + 4
MAX_RECORD_HEAD = 3 + 5 + 1 + 5 * MAX_SECTIONS + 2 * DIGEST


class TruncatedVideoWarning(UserWarning):
    """The file ends inside a frame record (or before its index): frames up to the last complete one decode."""


@dataclass(frozen=True)
class VideoHeader:
    """Everything a decoder needs besides the frame records."""

    model_id: str  # video model (temporal entropy model)
    weights_digest: bytes  # SHA-256 of the video model's weights file
    image_model_id: str  # image model whose transforms code every frame
    image_weights_digest: bytes  # SHA-256 of its weights file
    quality_milli: int
    width: int  # original frame size, before padding
    height: int
    pad_bottom: int
    pad_right: int
    fps_num: int
    fps_den: int
    tb_num: int  # time base: frame i is shown at i * fps_den / fps_num seconds = pts i * time base
    tb_den: int
    gop: int  # distance between I-frames; 0: only the first frame is intra
    flags: int = 0  # 1.1: SCENE_CUTS

    @property
    def scene_cuts(self) -> bool:
        """Whether frames the GOP rule leaves to P may also be I-frames (where that is cheaper)."""
        return bool(self.flags & SCENE_CUTS)

    @property
    def minor(self) -> int:
        """The minor version this header is written as: 1 with flags, else 0."""
        return 1 if self.flags else 0

    @property
    def quality(self) -> float:
        return self.quality_milli / 1000.0

    @property
    def fps(self) -> Fraction:
        return Fraction(self.fps_num, self.fps_den)

    def is_intra(self, index: int) -> bool:
        """Whether frame ``index`` must be an I-frame (the GOP rule)."""
        return index == 0 or (self.gop > 0 and index % self.gop == 0)

    def allows(self, index: int, intra: bool) -> bool:
        """Whether frame ``index`` may have this type: GOP-rule frames are I, others P, or
        either with ``scene_cuts``."""
        return intra == self.is_intra(index) or (intra and self.scene_cuts)

    def validate(self) -> None:
        for mid in (self.model_id, self.image_model_id):
            if not _ID.fullmatch(mid.encode("ascii", "replace")):
                raise InvalidHeaderError(f"invalid model id {mid!r}")
        if len(self.weights_digest) != 32 or len(self.image_weights_digest) != 32:
            raise InvalidHeaderError("digest fields have the wrong length")
        if not (1 <= self.width <= MAX_SIDE and 1 <= self.height <= MAX_SIDE) or self.width * self.height > MAX_PIXELS:
            raise InvalidHeaderError(f"frame size {self.width}x{self.height} is not allowed")
        if self.fps_num < 1 or self.fps_den < 1 or self.tb_num < 1 or self.tb_den < 1:
            raise InvalidHeaderError("frame rate and time base must be positive")
        if self.quality_milli > 1_000_000 or self.gop > MAX_FRAMES:
            raise InvalidHeaderError("quality or GOP field out of range")
        if self.flags & ~SCENE_CUTS:
            raise InvalidHeaderError(f"header flags 0x{self.flags:02x} name features this reader does not know")

    def pack(self) -> bytes:
        out = b""
        for mid, digest in ((self.model_id, self.weights_digest), (self.image_model_id, self.image_weights_digest)):
            b = mid.encode("ascii")
            out += bytes([len(b)]) + b + digest
        out += _FIXED.pack(self.quality_milli, self.width, self.height, self.pad_bottom, self.pad_right,
                           self.fps_num, self.fps_den, self.tb_num, self.tb_den, self.gop)
        return out + (bytes([self.flags]) if self.flags else b"")


@dataclass
class FrameRecord:
    number: int
    intra: bool
    sections: list[bytes]
    latent_digest: bytes  # first 8 bytes of the frame's BLAKE2b-128 latent digest are stored
    image_digest: bytes | None = None  # of the encoder's 8-bit reconstruction (first 8 bytes stored), if computed


@dataclass
class IndexEntry:
    offset: int
    intra: bool
    size: int  # bytes of the whole record


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _read_varint(buf: bytes, pos: int, what: str) -> tuple[int, int]:
    """(value, next position); at most 5 bytes (values below 2**35)."""
    value = 0
    for k in range(5):
        if pos >= len(buf):
            raise TruncatedFileError(f"file is truncated inside {what}")
        b = buf[pos]
        value |= (b & 0x7F) << (7 * k)
        pos += 1
        if not b & 0x80:
            return value, pos
    raise CorruptFileError(f"{what}: a length field is too long: the file is damaged")


def header_bytes(header: VideoHeader) -> bytes:
    header.validate()
    body = header.pack()
    head = _PREFIX.pack(MAGIC, VERSION[0], header.minor, len(body)) + body
    return head + struct.pack("<I", zlib.crc32(head))


def record_bytes(frame: FrameRecord) -> bytes:
    if not (1 <= len(frame.sections) <= MAX_SECTIONS):
        raise ValueError(f"a frame holds 1..{MAX_SECTIONS} sections")
    flags = (0 if frame.intra else _P_FRAME) | (_HAS_IMAGE_DIGEST if frame.image_digest else 0)
    parts = [bytes([RECORD_MARKER, flags]), _varint(frame.number), bytes([len(frame.sections)])]
    parts += [_varint(len(s)) for s in frame.sections]
    parts.append(frame.latent_digest[:DIGEST])
    if frame.image_digest:
        parts.append(frame.image_digest[:DIGEST])
    body = b"".join(parts + list(frame.sections))
    return body + struct.pack("<I", zlib.crc32(body))


def index_bytes(entries: list[IndexEntry], index_offset: int) -> bytes:
    body = INDEX_TAG + struct.pack("<I", len(entries)) + b"".join(
        _varint(e.size * 2 + (0 if e.intra else 1)) for e in entries)
    return body + struct.pack("<I", zlib.crc32(body)) + _TRAILER.pack(index_offset, len(entries), END_TAG)


@dataclass
class _RecordHead:
    intra: bool
    number: int
    lengths: list[int]
    latent_digest: bytes
    image_digest: bytes | None
    head_size: int  # bytes before the first payload

    @property
    def size(self) -> int:
        return self.head_size + sum(self.lengths) + 4


def _parse_record_head(buf: bytes, i: int) -> _RecordHead:
    """Fields of a record head at the start of ``buf``; TruncatedFileError if ``buf`` ends inside it."""
    what = f"frame {i}"
    if len(buf) < 2:
        raise TruncatedFileError(f"file is truncated inside {what}")
    if buf[0] != RECORD_MARKER or buf[1] & ~(_P_FRAME | _HAS_IMAGE_DIGEST):
        raise CorruptFileError(f"frame {i}: record marker is damaged")
    number, pos = _read_varint(buf, 2, what)
    if number != i:
        raise CorruptFileError(f"frame {i}: record says it is frame {number}: the file is damaged")
    if pos >= len(buf):
        raise TruncatedFileError(f"file is truncated inside {what}")
    n = buf[pos]
    pos += 1
    if not (1 <= n <= MAX_SECTIONS):
        raise CorruptFileError(f"frame {i}: section count {n} is invalid: the file is damaged")
    lengths = []
    for _ in range(n):
        length, pos = _read_varint(buf, pos, what)
        lengths.append(length)
    digests = []
    for _ in range(2 if buf[1] & _HAS_IMAGE_DIGEST else 1):
        if len(buf) < pos + DIGEST:
            raise TruncatedFileError(f"file is truncated inside {what}")
        digests.append(bytes(buf[pos : pos + DIGEST]))
        pos += DIGEST
    intra = not buf[1] & _P_FRAME
    if i == 0 and not intra:
        raise CorruptFileError("frame 0 is not an I-frame: the file is damaged")
    return _RecordHead(intra, number, lengths, digests[0], digests[1] if len(digests) > 1 else None, pos)


class NcvWriter:
    """Write a .ncv file to an open binary file, record by record; :meth:`finish` adds the index."""

    def __init__(self, f: BinaryIO, header: VideoHeader) -> None:
        self.f, self.header, self.entries = f, header, []
        self.pos = f.write(header_bytes(header))

    def add(self, frame: FrameRecord) -> int:
        """Append one frame (numbered in order); returns its record's size in bytes."""
        if frame.number != len(self.entries):
            raise ValueError("frames must be added in order")
        data = record_bytes(frame)
        self.entries.append(IndexEntry(self.pos, frame.intra, len(data)))
        self.pos += self.f.write(data)
        return len(data)

    def finish(self) -> None:
        self.f.write(index_bytes(self.entries, self.pos))


@dataclass
class NcvFile:
    header: VideoHeader
    version: tuple[int, int]
    entries: list[IndexEntry] = field(default_factory=list)
    indexed: bool = True  # False: no valid index, frames were found by scanning
    truncated: bool = False  # the file ends inside a frame record

    @property
    def frames(self) -> int:
        return len(self.entries)


class NcvReader:
    """Random access to a .ncv file's frame records (context manager)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        self.f = open(self.path, "rb")
        try:
            self.size = os.fstat(self.f.fileno()).st_size
            self.file = self._open()
        except BaseException:
            self.f.close()
            raise

    def close(self) -> None:
        self.f.close()

    def __enter__(self) -> "NcvReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read(self, offset: int, n: int, what: str) -> bytes:
        if offset + n > self.size:
            raise TruncatedFileError(f"file is truncated inside {what}")
        self.f.seek(offset)
        return self.f.read(n)

    def _open(self) -> NcvFile:
        if self.size < 4 or self._read(0, 4, "its magic") != MAGIC:
            raise NotNcfError("not a neuralcodec video file (wrong magic bytes)")
        _, major, minor, hlen = _PREFIX.unpack(self._read(0, _PREFIX.size, "its header"))
        if major != VERSION[0]:
            raise UnsupportedVersionError(f"video format version {major}.{minor} is not supported (this reader handles 1.x)")
        if hlen > MAX_HEADER:
            raise InvalidHeaderError(f"header length {hlen} exceeds {MAX_HEADER} bytes")
        head = self._read(0, _PREFIX.size + hlen + 4, "its header")
        if struct.unpack_from("<I", head, _PREFIX.size + hlen)[0] != zlib.crc32(head[:-4]):
            raise CorruptFileError("header checksum mismatch: the file is damaged")
        header = _parse_header(head[_PREFIX.size : _PREFIX.size + hlen], minor)
        self.data_start = _PREFIX.size + hlen + 4
        entries = self._read_index()
        if entries is not None:
            return NcvFile(header, (major, minor), entries, True, False)
        entries, truncated = self._scan()
        return NcvFile(header, (major, minor), entries, False, truncated)

    def _read_index(self) -> list[IndexEntry] | None:
        """The frame index, or None if the file has no trailer (then records are scanned).
        A trailer that is present but inconsistent is damage, not truncation."""
        if self.size < self.data_start + _TRAILER.size:
            return None
        offset, n, tag = _TRAILER.unpack(self._read(self.size - _TRAILER.size, _TRAILER.size, "its trailer"))
        if tag != END_TAG:
            return None
        length = self.size - _TRAILER.size - offset
        if n > MAX_FRAMES or offset < self.data_start or not (12 + n <= length <= 12 + 5 * n):
            raise CorruptFileError("frame index position or size is invalid: the file is damaged")
        body = self._read(offset, length, "its frame index")
        if body[:4] != INDEX_TAG or struct.unpack_from("<I", body, 4)[0] != n:
            raise CorruptFileError("frame index is damaged")
        if struct.unpack_from("<I", body, length - 4)[0] != zlib.crc32(body[:-4]):
            raise CorruptFileError("frame index checksum mismatch: the file is damaged")
        entries, pos, at = [], 8, self.data_start
        for i in range(n):
            v, pos = _read_varint(body[:-4], pos, "the frame index")
            size, intra = v >> 1, not v & 1
            if size < MIN_RECORD or (i == 0 and not intra):
                raise CorruptFileError(f"frame index entry {i} is invalid: the file is damaged")
            entries.append(IndexEntry(at, intra, size))
            at += size
        if pos != length - 4 or at != offset:
            raise CorruptFileError("frame index does not match the frame data: the file is damaged")
        return entries

    def _scan(self) -> tuple[list[IndexEntry], bool]:
        """Find records by reading their heads only; stop at the last complete one."""
        entries, pos = [], self.data_start
        while pos < self.size:
            if self._read(pos, 1, "a frame record") == INDEX_TAG[:1]:
                raise CorruptFileError("frame index is present but its trailer is damaged")
            self.f.seek(pos)
            try:
                head = _parse_record_head(self.f.read(MAX_RECORD_HEAD), len(entries))
            except TruncatedFileError:
                return entries, True
            if pos + head.size > self.size:
                return entries, True
            entries.append(IndexEntry(pos, head.intra, head.size))
            pos += head.size
        return entries, False

    def read_frame(self, i: int) -> FrameRecord:
        """Frame ``i``'s record with its checksum verified; errors name the frame."""
        if not (0 <= i < self.file.frames):
            raise IndexError(f"frame {i} is out of range (the file has {self.file.frames} frames)")
        e = self.file.entries[i]
        data = self._read(e.offset, e.size, f"frame {i}")
        if struct.unpack_from("<I", data, e.size - 4)[0] != zlib.crc32(memoryview(data)[:-4]):
            raise CorruptFileError(f"frame {i}: checksum mismatch: the file is damaged")
        try:
            head = _parse_record_head(data, i)
        except TruncatedFileError:
            raise CorruptFileError(f"frame {i}: record is shorter than its fields: the file is damaged") from None
        if head.intra != e.intra or head.size != e.size:
            raise CorruptFileError(f"frame {i}: record differs from the frame index: the file is damaged")
        sections, pos = [], head.head_size
        for length in head.lengths:
            sections.append(data[pos : pos + length])
            pos += length
        return FrameRecord(i, head.intra, sections, head.latent_digest, head.image_digest)

    def records(self, start: int = 0) -> Iterator[FrameRecord]:
        """Frame records from ``start`` on; warns once at the end of a file without its index."""
        for i in range(start, self.file.frames):
            yield self.read_frame(i)
        if not self.file.indexed:
            warnings.warn(
                f"{self.path} has no frame index (the writer stopped early{', mid-frame' if self.file.truncated else ''}): "
                f"decoded its {self.file.frames} complete frames", TruncatedVideoWarning, stacklevel=2)


def _parse_header(body: bytes, minor: int) -> VideoHeader:
    pos, ids = 0, []
    for _ in range(2):
        if len(body) < pos + 1:
            raise InvalidHeaderError("header is shorter than its fields")
        n = body[pos]
        if len(body) < pos + 1 + n + 32:
            raise InvalidHeaderError("header is shorter than its fields")
        try:
            ids.append((body[pos + 1 : pos + 1 + n].decode("ascii"), body[pos + 1 + n : pos + 33 + n]))
        except UnicodeDecodeError:
            raise InvalidHeaderError("model id is not ASCII") from None
        pos += 33 + n
    if len(body) < pos + _FIXED.size:
        raise InvalidHeaderError("header is shorter than its fields")
    (q, w, h, pb, pr, fn, fd, tn, td, gop) = _FIXED.unpack_from(body, pos)
    pos += _FIXED.size
    flags = body[pos] if minor >= 1 and len(body) > pos else 0  # 1.1; later bytes: a newer minor, skipped
    header = VideoHeader(ids[0][0], ids[0][1], ids[1][0], ids[1][1], q, w, h, pb, pr, fn, fd, tn, td, gop, flags)
    header.validate()
    return header
