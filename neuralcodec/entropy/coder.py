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
        if cdf.ndim != 2 or lengths.shape != offsets.shape or lengths.shape[0] != cdf.shape[0]:
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
        idx, _ = self._indices(values.ravel(), rows)
        return float(-np.log2(self.freq_table[rows, idx] / 65536.0).sum())

    def _indices(self, values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = values.astype(np.int64) - self.offsets[rows]
        esc = (idx < 0) | (idx >= self.escape[rows])
        idx[esc] = self.escape[rows][esc]
        return idx, esc


def _groups(rows: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Stable order that sorts ``rows`` and the (row, start, end) runs of that order."""
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    cuts = np.flatnonzero(np.diff(sorted_rows)) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [len(rows)]))
    return order, [(int(sorted_rows[s]), int(s), int(e)) for s, e in zip(starts, ends) if e > s]


def encode(values: np.ndarray, rows: np.ndarray, tables: CdfTables) -> bytes:
    """Code integer ``values`` (any shape), each with the table row of the same position in ``rows``."""
    values, rows = values.ravel(), rows.ravel().astype(np.int64)
    idx, esc = tables._indices(values, rows)
    escapes = values[esc].astype("<i4")
    order, groups = _groups(rows)
    idx = idx[order].astype(np.int32)
    coder = _AnsCoder()
    for row, s, e in reversed(groups):  # ANS is a stack: last group in, first out
        coder.encode_reverse(idx[s:e], tables.models[row])
    words = coder.get_compressed().astype("<u4")
    return struct.pack("<I", len(escapes)) + escapes.tobytes() + words.tobytes()


def decode(payload: bytes, rows: np.ndarray, tables: CdfTables) -> np.ndarray:
    """Inverse of :func:`encode`; ``rows`` fixes the shape and the table of every value."""
    shape, rows = rows.shape, rows.ravel().astype(np.int64)
    if len(payload) < 4:
        raise CorruptFileError("coded section is shorter than its 4-byte escape count")
    (n_esc,) = struct.unpack_from("<I", payload)
    end_esc = 4 + 4 * n_esc
    if n_esc > rows.size or end_esc > len(payload) or (len(payload) - end_esc) % 4:
        raise CorruptFileError("coded section has an impossible length or escape count")
    escapes = np.frombuffer(payload, dtype="<i4", count=n_esc, offset=4)
    words = np.frombuffer(payload, dtype="<u4", offset=end_esc).astype(np.uint32)
    order, groups = _groups(rows)
    idx_sorted = np.empty(rows.size, dtype=np.int64)
    try:
        coder = _AnsCoder(words)
        for row, s, e in groups:
            idx_sorted[s:e] = coder.decode(tables.models[row], e - s)
    except Exception as exc:  # constriction signals exhausted or invalid data with various errors
        raise CorruptFileError(f"entropy-coded data is invalid ({exc})") from None
    if not coder.is_empty():
        raise CorruptFileError("entropy-coded data has bytes left over after the last symbol")
    idx = np.empty_like(idx_sorted)
    idx[order] = idx_sorted
    values = idx + tables.offsets[rows]
    esc = idx == tables.escape[rows]
    if int(esc.sum()) != n_esc:
        raise CorruptFileError("escape count does not match the coded symbols")
    values[esc] = escapes
    return values.astype(np.int32).reshape(shape)
