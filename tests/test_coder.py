"""The range coder: exact round trips, escapes for any int32, overhead against the tables."""

import numpy as np
import pytest
from compressai.entropy_models import GaussianConditional

from neuralcodec.entropy import CdfTables, decode, default_scale_table, encode
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
    extremes = np.array([2**31 - 1, -(2**31), 2**30, -(2**30), 10**6, -(10**6), 5000, -5000, 0, 1], dtype=np.int32)
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
