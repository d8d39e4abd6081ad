"""Range coding of integer symbols with precomputed integer tables, on constriction's ANS coder.

A :class:`CdfTables` holds ``n`` quantized distributions in compressai's layout (a CDF row of
``length`` entries with 16-bit precision, the last interval being an *escape* symbol, and an
``offset`` giving the value of the first entry). Values outside a row's range are coded as the
escape symbol and stored verbatim as int32 after the header of the payload.

Payload layout (little-endian)::

    u32 n_escapes | i32 escapes[n_escapes] | u32 ans_words[...]

Symbols are grouped by table row (stable order) and each group goes to the coder in one
vectorized call; nothing loops over individual symbols in Python.
"""

from __future__ import annotations

import struct

import constriction
import numpy as np

from ..errors import CorruptFileError

_Categorical = constriction.stream.model.Categorical
_AnsCoder = constriction.stream.stack.AnsCoder


class CdfTables:
    """Integer probability tables and the constriction models built from them (once)."""

    def __init__(self, cdf: np.ndarray, lengths: np.ndarray, offsets: np.ndarray) -> None:
        cdf, lengths, offsets = (np.asarray(a, dtype=np.int64) for a in (cdf, lengths, offsets))
        if cdf.ndim != 2 or len(lengths) > 65536:
            raise ValueError("tables must be a 2-D CDF array with at most 65536 rows")
        if lengths.shape != offsets.shape or lengths.shape[0] != cdf.shape[0]:
            raise ValueError("inconsistent table shapes")
        self.offsets = offsets
        self.escape = lengths - 2  # index of the escape symbol in each row
        freqs = [np.diff(cdf[i, : lengths[i]]) for i in range(len(lengths))]
        self.freq_table = np.zeros((len(freqs), int(lengths.max()) - 1), dtype=np.int64)
        for i, f in enumerate(freqs):
            self.freq_table[i, : len(f)] = f
        self.models = [_Categorical(f.astype(np.float64), perfect=False) for f in freqs]

    def __len__(self) -> int:
        return len(self.offsets)

    def ideal_bits(self, values: np.ndarray, rows: np.ndarray) -> float:
        """Information content of ``values`` under the integer tables (what a perfect coder spends)."""
        rows = rows.ravel().astype(np.int64)
        idx, _ = _symbol_indices(values.ravel(), self.offsets[rows], self.escape[rows])
        return float(-np.log2(self.freq_table[rows, idx] / 65536.0).sum())


def _symbol_indices(values: np.ndarray, offsets: np.ndarray, escape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Table index of each value (its row's offset and escape index given per value) and the
    mask of values that fall outside their row and are coded as the escape symbol."""
    idx = values.astype(np.int64) - offsets
    esc = (idx < 0) | (idx >= escape)
    idx[esc] = escape[esc]
    return idx, esc


def _groups(rows: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Stable order that sorts ``rows`` and the (row, start, end) runs of that order.

    Rows are small non-negative integers, so they are sorted as uint8/uint16, for which numpy's
    stable sort is a linear-time radix sort (10x faster than sorting int64 here).
    """
    n_rows = int(rows.max()) + 1 if rows.size else 0
    key = rows.astype(np.uint8 if n_rows <= 256 else np.uint16 if n_rows <= 65536 else np.int64)
    order = np.argsort(key, kind="stable")
    counts = np.bincount(key, minlength=n_rows)
    ends = np.cumsum(counts)
    return order, [(int(r), int(ends[r] - counts[r]), int(ends[r])) for r in np.flatnonzero(counts)]


def _per_run(table: np.ndarray, groups: list[tuple[int, int, int]]) -> np.ndarray:
    """``table[row]`` for every symbol position in sorted order."""
    return np.repeat(table[[g[0] for g in groups]], [g[2] - g[1] for g in groups])


def encode(values: np.ndarray, rows: np.ndarray, tables: CdfTables) -> bytes:
    """Code integer ``values`` (any shape), each with the table row of the same position in ``rows``."""
    values, rows = values.ravel(), rows.ravel()
    order, groups = _groups(rows)
    if not groups:
        return struct.pack("<I", 0)
    idx, esc_sorted = _symbol_indices(values[order], _per_run(tables.offsets, groups), _per_run(tables.escape, groups))
    escapes = values[np.sort(order[esc_sorted])].astype("<i4")  # in position order
    idx = idx.astype(np.int32)
    coder = _AnsCoder()
    for row, s, e in reversed(groups):  # ANS is a stack: last group in, first out
        coder.encode_reverse(idx[s:e], tables.models[row])
    words = coder.get_compressed().astype("<u4")
    return struct.pack("<I", len(escapes)) + escapes.tobytes() + words.tobytes()


def decode(payload: bytes, rows: np.ndarray, tables: CdfTables) -> np.ndarray:
    """Inverse of :func:`encode`; ``rows`` fixes the shape and the table of every value."""
    shape, rows = rows.shape, rows.ravel()
    if len(payload) < 4:
        raise CorruptFileError("coded section is shorter than its 4-byte escape count")
    (n_esc,) = struct.unpack_from("<I", payload)
    end_esc = 4 + 4 * n_esc
    if n_esc > rows.size or end_esc > len(payload) or (len(payload) - end_esc) % 4:
        raise CorruptFileError("coded section has an impossible length or escape count")
    escapes = np.frombuffer(payload, dtype="<i4", count=n_esc, offset=4)
    words = np.frombuffer(payload, dtype="<u4", offset=end_esc).astype(np.uint32)
    order, groups = _groups(rows)
    idx = np.empty(rows.size, dtype=np.int32)
    try:
        coder = _AnsCoder(words)
        for row, s, e in groups:
            idx[s:e] = coder.decode(tables.models[row], e - s)
    except Exception as exc:  # constriction signals exhausted or invalid data with various errors
        raise CorruptFileError(f"entropy-coded data is invalid ({exc})") from None
    if not coder.is_empty():
        raise CorruptFileError("entropy-coded data has bytes left over after the last symbol")
    values = np.empty(rows.size, dtype=np.int32)
    if groups:
        esc_sorted = idx == _per_run(tables.escape, groups)
        values[order] = idx + _per_run(tables.offsets, groups)
    else:
        esc_sorted = np.zeros(0, dtype=bool)
    if int(esc_sorted.sum()) != n_esc:
        raise CorruptFileError("escape count does not match the coded symbols")
    if n_esc:
        values[np.sort(order[esc_sorted])] = escapes
    return values.reshape(shape)
