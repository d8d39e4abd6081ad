"""The range coder: exact round trips, escapes for any int32, overhead against the tables."""

import numpy as np
import pytest
from compressai.entropy_models import GaussianConditional

import struct

from neuralcodec.entropy import CdfTables, decode, default_scale_table, encode
from neuralcodec.entropy.coder import slack
from neuralcodec.errors import CorruptFileError


@pytest.fixture(scope="module")
def tables() -> CdfTables:
    gc = GaussianConditional(None)
    gc.update_scale_table(default_scale_table(), force=True)
    return CdfTables(gc._quantized_cdf.numpy(), gc._cdf_length.numpy(), gc._offset.numpy())


def gaussian_symbols(n, rng):
    rows = rng.integers(0, 64, n)
    scales = np.array(default_scale_table())[rows]
    return np.round(rng.normal(0, scales)).astype(np.int32), rows


def test_round_trip(tables):
    rng = np.random.default_rng(1)
    values, rows = gaussian_symbols(20000, rng)
    assert np.array_equal(decode(encode(values, rows, tables), rows, tables), values)


def test_shapes_are_kept(tables):
    rng = np.random.default_rng(2)
    values, rows = gaussian_symbols(4 * 5 * 6, rng)
    values, rows = values.reshape(4, 5, 6), rows.reshape(4, 5, 6)
    out = decode(encode(values, rows, tables), rows, tables)
    assert out.shape == (4, 5, 6) and np.array_equal(out, values)


def test_adversarial_values_round_trip_through_escapes(tables):
    extremes = np.array([2**30, -(2**30), 2**30 - 1, 10**6, -(10**6), 5000, -5000, 0, 1], dtype=np.int32)
    rows = np.zeros(len(extremes), dtype=np.int64)  # narrowest table: almost everything escapes
    payload = encode(extremes, rows, tables)
    assert np.array_equal(decode(payload, rows, tables), extremes)
    rows = np.full(len(extremes), 63)  # widest table
    assert np.array_equal(decode(encode(extremes, rows, tables), rows, tables), extremes)


def test_empty(tables):
    rows = np.zeros(0, dtype=np.int64)
    assert decode(encode(np.zeros(0, np.int32), rows, tables), rows, tables).size == 0


def test_overhead_against_ideal_bits(tables):
    rng = np.random.default_rng(3)
    values, rows = gaussian_symbols(200000, rng)
    payload = encode(values, rows, tables)
    ideal = tables.ideal_bits(values, rows)
    assert len(payload) * 8 <= ideal * 1.001 + 64


@pytest.mark.parametrize("damage", ["truncate", "flip", "escape_count"])
def test_damaged_payload_raises(tables, damage):
    rng = np.random.default_rng(4)
    values, rows = gaussian_symbols(5000, rng)
    payload = bytearray(encode(values, rows, tables))
    if damage == "truncate":
        payload = payload[: len(payload) // 2 // 4 * 4]
    elif damage == "flip":
        payload[len(payload) // 2] ^= 0xFF
    else:
        payload[0:4] = (10**9).to_bytes(4, "little")
    with pytest.raises(CorruptFileError):
        decode(bytes(payload), rows, tables)


def test_values_beyond_the_limit_are_not_coded(tables):
    with pytest.raises(ValueError, match="2\\^30"):
        encode(np.array([2**30 + 1], dtype=np.int32), np.zeros(1, dtype=np.int64), tables)


def _with_escapes(payload: bytes, escapes: list[int]) -> bytes:
    (n,) = struct.unpack_from("<I", payload)
    return struct.pack("<I", len(escapes)) + np.array(escapes, "<i4").tobytes() + payload[4 + 4 * n :]


def test_escape_of_a_value_the_table_covers_is_refused(tables):
    rows = np.full(3, 63)  # widest table
    values = np.array([0, 10**6, 1], dtype=np.int32)  # one escape
    payload = encode(values, rows, tables)
    with pytest.raises(CorruptFileError, match="table covers"):
        decode(_with_escapes(payload, [5]), rows, tables)


def test_escaped_value_beyond_the_limit_is_refused(tables):
    rows = np.full(3, 63)
    payload = encode(np.array([0, 10**6, 1], dtype=np.int32), rows, tables)
    with pytest.raises(CorruptFileError, match="2\\^30"):
        decode(_with_escapes(payload, [2**31 - 1]), rows, tables)


def test_empty_payload_cannot_decode_many_symbols(tables):
    """An exhausted ANS coder decodes symbol 0 forever: the length rule refuses it."""
    rows = np.random.default_rng(5).integers(20, 64, 100000)
    with pytest.raises(CorruptFileError, match="too short"):
        decode(struct.pack("<I", 0), rows, tables)


def test_garbage_words_do_not_account_for_the_symbols(tables):
    rows = np.full(100000, 63)
    words = np.random.default_rng(6).integers(1, 2**32, 1000, dtype=np.uint32)
    with pytest.raises(CorruptFileError):
        decode(struct.pack("<I", 0) + words.astype("<u4").tobytes(), rows, tables)


def test_truncated_payload_names_the_rule(tables):
    rng = np.random.default_rng(7)
    values, rows = gaussian_symbols(50000, rng)
    payload = encode(values, rows, tables)
    short = payload[:4] + payload[-(len(payload) - 4) // 10 // 4 * 4 :]  # the last 10 % of the words
    with pytest.raises(CorruptFileError, match="too short|account|invalid|left over"):
        decode(short, rows, tables)


def test_trailing_zero_word_is_refused(tables):
    rng = np.random.default_rng(8)
    values, rows = gaussian_symbols(1000, rng)
    with pytest.raises(CorruptFileError):
        decode(encode(values, rows, tables) + bytes(4), rows, tables)


def test_real_payloads_account_for_their_length(tables):
    """The rule's slack is far above what the coder spends beyond the information content."""
    rng = np.random.default_rng(9)
    for n in (1, 10, 1000, 100000):
        values, rows = gaussian_symbols(n, rng)
        payload = encode(values, rows, tables)
        n_esc = struct.unpack_from("<I", payload)[0]
        info, bits = tables.ideal_bits(values, rows), 8 * (len(payload) - 4 - 4 * n_esc)
        assert -8 <= bits - info <= 64 < slack(info, n)


def test_encoder_refuses_a_payload_that_breaks_the_length_rule(tables):
    """Symbol 0 of every row, coded from the empty state, takes no ANS word at all."""
    rows = np.full(1000, 40)
    values = tables.offsets[rows].astype(np.int32)  # index 0 of each row
    with pytest.raises(ValueError, match="length rule"):
        encode(values, rows, tables)


def test_error_names_the_section(tables):
    class Labelled(bytes):
        label = "section 2 of 3"

    with pytest.raises(CorruptFileError, match="section 2 of 3"):
        decode(Labelled(struct.pack("<I", 0)), np.full(100000, 63), tables)


def test_per_channel_rows_decode_without_reading_them(tables):
    """Rows broadcast per channel (the factorized stages) are runs already, in any layout."""
    rng = np.random.default_rng(10)
    rows = np.broadcast_to(np.array([3, 17, 40])[:, None, None], (3, 20, 30))
    values = np.round(rng.normal(0, 4, rows.shape)).astype(np.int32)
    payload = encode(values, rows, tables)
    assert payload == encode(values, np.ascontiguousarray(rows), tables)
    assert np.array_equal(decode(payload, rows, tables), values)
    unsorted = np.broadcast_to(np.array([40, 3])[:, None, None], (2, 5, 5))
    v = values[:2, :5, :5]
    assert np.array_equal(decode(encode(v, unsorted, tables), unsorted, tables), v)
