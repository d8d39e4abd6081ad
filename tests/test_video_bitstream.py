"""The .ncv container on its own (no models): layout, index, scanning, validation before allocation."""

import dataclasses
import io
import struct
import warnings
import zlib

import pytest

from neuralcodec.bitstream import video as ncv
from neuralcodec.errors import CorruptFileError, InvalidHeaderError, NotNcfError, UnsupportedVersionError

HEADER = ncv.VideoHeader("stem-msh", bytes(range(32)), "mean-scale-hyperprior", bytes(32), 1000, 176, 144, 48, 16,
                         30000, 1001, 1001, 30000, 3)


def frames(n: int) -> list[ncv.FrameRecord]:
    return [ncv.FrameRecord(i, HEADER.is_intra(i), [bytes([i]) * (5 + i), b"\x00" * 4, b"xyz"][: 2 if HEADER.is_intra(i) else 3],
                            bytes([i]) * 16, bytes([255 - i]) * 16 if i % 2 else None) for i in range(n)]


def write(path, n: int = 5, finish: bool = True) -> bytes:
    buf = io.BytesIO()
    w = ncv.NcvWriter(buf, HEADER)
    for f in frames(n):
        w.add(f)
    if finish:
        w.finish()
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def test_header_fields_round_trip(tmp_path):
    write(tmp_path / "a.ncv")
    with ncv.NcvReader(tmp_path / "a.ncv") as r:
        assert r.file.header == HEADER and r.file.version == (1, 0) and r.file.indexed
        assert float(r.file.header.fps) == pytest.approx(29.97, abs=1e-3)


def test_records_round_trip_with_short_digests(tmp_path):
    write(tmp_path / "a.ncv")
    with ncv.NcvReader(tmp_path / "a.ncv") as r:
        got = list(r.records())
    for g, f in zip(got, frames(5)):
        assert g.sections == f.sections and g.intra == f.intra
        assert g.latent_digest == f.latent_digest[: ncv.DIGEST]
        assert g.image_digest == (f.image_digest[: ncv.DIGEST] if f.image_digest else None)


def test_gop_decides_frame_types():
    assert [HEADER.is_intra(i) for i in range(7)] == [True, False, False, True, False, False, True]
    only_first = dataclasses.replace(HEADER, gop=0)
    assert [only_first.is_intra(i) for i in range(4)] == [True, False, False, False]
    assert [HEADER.allows(i, True) for i in range(4)] == [True, False, False, True]  # 1.0: the GOP rule only
    assert [HEADER.allows(i, False) for i in range(4)] == [False, True, True, False]
    cuts = dataclasses.replace(HEADER, flags=ncv.SCENE_CUTS)
    assert [cuts.allows(i, True) for i in range(4)] == [True] * 4  # 1.1 scene cuts: any frame may be I
    assert [cuts.allows(i, False) for i in range(4)] == [False, True, True, False]  # GOP frames stay I


def test_scene_cut_flag_writes_format_1_1_and_only_then(tmp_path):
    """Without flags the header is byte for byte what 1.0 encoders wrote; the flag makes it 1.1."""
    plain = ncv.header_bytes(HEADER)
    assert plain[4:6] == bytes([1, 0])
    cuts = dataclasses.replace(HEADER, flags=ncv.SCENE_CUTS)
    data = ncv.header_bytes(cuts)
    assert data[4:6] == bytes([1, 1]) and len(data) == len(plain) + 1
    buf = io.BytesIO()
    w = ncv.NcvWriter(buf, cuts)
    for f in frames(2) + [ncv.FrameRecord(2, True, [b"ab", b"c"], bytes(16))]:  # frame 2: a cut, off the GOP
        w.add(f)
    w.finish()
    (tmp_path / "c.ncv").write_bytes(buf.getvalue())
    with ncv.NcvReader(tmp_path / "c.ncv") as r:
        assert r.file.header == cuts and r.file.version == (1, 1) and r.file.header.scene_cuts
        assert [e.intra for e in r.file.entries] == [True, False, True]


def test_unknown_header_flags_are_refused(tmp_path):
    with pytest.raises(InvalidHeaderError, match="flags 0x02"):
        ncv.header_bytes(dataclasses.replace(HEADER, flags=2))
    body = dataclasses.replace(HEADER, flags=2).pack()  # a file from a future writer: refused on reading
    head = struct.pack("<4sBBH", ncv.MAGIC, 1, 1, len(body)) + body
    (tmp_path / "f.ncv").write_bytes(head + struct.pack("<I", zlib.crc32(head)))
    with pytest.raises(InvalidHeaderError, match="flags 0x02"):
        ncv.NcvReader(tmp_path / "f.ncv")


def test_scan_without_index_finds_the_same_records(tmp_path):
    write(tmp_path / "a.ncv")
    write(tmp_path / "b.ncv", finish=False)
    with ncv.NcvReader(tmp_path / "a.ncv") as a, ncv.NcvReader(tmp_path / "b.ncv") as b:
        assert [(e.offset, e.size, e.intra) for e in a.file.entries] == [(e.offset, e.size, e.intra) for e in b.file.entries]
        assert not b.file.indexed and not b.file.truncated


@pytest.mark.parametrize("cut", [1, 5, 30])
def test_cut_inside_a_record_keeps_the_complete_ones(tmp_path, cut):
    data = write(tmp_path / "a.ncv", finish=False)
    (tmp_path / "c.ncv").write_bytes(data[:-cut])
    with ncv.NcvReader(tmp_path / "c.ncv") as r:
        assert r.file.frames == 4 and r.file.truncated
        with pytest.warns(ncv.TruncatedVideoWarning, match="4 complete frames"):
            assert len(list(r.records())) == 4


def test_damaged_record_names_its_frame(tmp_path):
    data = bytearray(write(tmp_path / "a.ncv"))
    with ncv.NcvReader(tmp_path / "a.ncv") as r:
        e = r.file.entries[3]
    data[e.offset + e.size - 6] ^= 1
    (tmp_path / "d.ncv").write_bytes(bytes(data))
    with ncv.NcvReader(tmp_path / "d.ncv") as r:
        r.read_frame(2)
        with pytest.raises(CorruptFileError, match="frame 3: checksum"):
            r.read_frame(3)


def test_index_that_disagrees_with_the_records_is_damage(tmp_path):
    data = bytearray(write(tmp_path / "a.ncv"))
    offset, n, _ = struct.unpack("<QI4s", bytes(data[-16:]))
    data[offset + 8] ^= 2  # first entry's size, index CRC recomputed so only the meaning is wrong
    body = bytes(data[offset:-20])
    data[-20:-16] = struct.pack("<I", __import__("zlib").crc32(body))
    (tmp_path / "i.ncv").write_bytes(bytes(data))
    with pytest.raises(CorruptFileError, match="index"):
        ncv.NcvReader(tmp_path / "i.ncv")


def test_absurd_counts_are_refused_before_allocation(tmp_path):
    data = bytearray(write(tmp_path / "a.ncv"))
    data[-12:-8] = struct.pack("<I", 2**32 - 1)
    (tmp_path / "n.ncv").write_bytes(bytes(data))
    with pytest.raises(CorruptFileError):
        ncv.NcvReader(tmp_path / "n.ncv")


def test_wrong_magic_and_newer_major_are_refused(tmp_path):
    data = bytearray(write(tmp_path / "a.ncv"))
    (tmp_path / "m.ncv").write_bytes(b"\x89NCF" + bytes(data[4:]))
    with pytest.raises(NotNcfError):
        ncv.NcvReader(tmp_path / "m.ncv")
    data[4] = 2
    (tmp_path / "v.ncv").write_bytes(bytes(data))
    with pytest.raises(UnsupportedVersionError):
        ncv.NcvReader(tmp_path / "v.ncv")


@pytest.mark.parametrize("field,value", [("width", 0), ("height", 40000), ("fps_den", 0), ("model_id", "Bad Id")])
def test_invalid_header_fields_are_refused(field, value):
    fields = {f: getattr(HEADER, f) for f in HEADER.__dataclass_fields__}
    fields[field] = value
    with pytest.raises(InvalidHeaderError):
        ncv.header_bytes(ncv.VideoHeader(**fields))


def test_first_frame_must_be_intra():
    buf = io.BytesIO()
    w = ncv.NcvWriter(buf, HEADER)
    w.add(ncv.FrameRecord(0, False, [b"x"], bytes(16)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CorruptFileError, match="frame 0"):
            ncv._parse_record_head(buf.getvalue()[len(ncv.header_bytes(HEADER)):], 0)
