"""Range coding of integer symbols with precomputed integer tables, on constriction's ANS coder.

A :class:`CdfTables` holds ``n`` quantized distributions in compressai's layout (a CDF row of
``length`` entries with 16-bit precision, the last interval being an *escape* symbol, and an
``offset`` giving the value of the first entry). Values outside a row's range are coded as the
escape symbol and stored verbatim as int32 after the header of the payload.

Payload layout (little-endian)::

    u32 n_escapes | i32 escapes[n_escapes] | u32 ans_words[...]

Symbols are grouped by table row (stable order) and each group goes to the coder in one
vectorized call; nothing loops over individual symbols in Python.

A payload must *account for its length* (docs/bitstream.md, "Coded section payload"): the
information content ``I`` of its symbols under the tables and its ``B = 32 * words`` ANS bits agree
within :func:`slack` bits. ANS decodes symbol 0 forever from an exhausted state, so without this
rule a 4-byte payload would "decode" any number of symbols; the decoder checks a lower bound of
``I`` before decoding anything and ``I`` itself afterwards, and the encoder refuses to write a
payload that breaks the rule.
"""

from __future__ import annotations

import struct

import constriction
import numpy as np

from ..errors import CorruptFileError

_Categorical = constriction.stream.model.Categorical
_AnsCoder = constriction.stream.stack.AnsCoder

VALUE_LIMIT = 2**30  # |value| of any coded symbol; encoders clip latents to this before rounding


def slack(info: float, n_symbols: int) -> float:
    """Largest allowed ``|B - I|`` in bits for ``n_symbols`` symbols carrying ``info`` bits: the
    64-bit ANS state flushed at the end, plus ANS state rounding and constriction's 24-bit
    requantization of the 16-bit tables (bounded relative to ``I`` and per symbol)."""
    return 64.0 + info / 64.0 + n_symbols / 1024.0


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
        # -log2 p of every table entry, and of each row's most probable entry (the fewest bits a
        # symbol of that row can carry)
        self.bits = -np.log2(np.maximum(self.freq_table, 1) / 65536.0)
        self.min_bits = -np.log2(self.freq_table.max(axis=1) / 65536.0)

    def __len__(self) -> int:
        return len(self.offsets)

    def ideal_bits(self, values: np.ndarray, rows: np.ndarray) -> float:
        """Information content of ``values`` under the integer tables (what a perfect coder spends)."""
        key, groups = _groups(rows)
        if not groups:
            return 0.0
        values = _sorted(values.ravel(), _order(key, groups))
        idx, _ = _symbol_indices(values, _per_run(self.offsets, groups), _per_run(self.escape, groups))
        return self.information(idx, groups)

    def information(self, idx: np.ndarray, groups: list[tuple[int, int, int]]) -> float:
        """Bits of table indices ``idx`` in sorted order, grouped as :func:`_groups` returns."""
        width = self.bits.shape[1]
        return float(sum(np.bincount(idx[s:e], minlength=width) @ self.bits[row] for row, s, e in groups))

    def least_information(self, groups: list[tuple[int, int, int]]) -> float:
        """Fewest bits any symbols of these groups can carry (every symbol its row's likeliest)."""
        return float(sum((e - s) * self.min_bits[row] for row, s, e in groups))


def _symbol_indices(values: np.ndarray, offsets: np.ndarray, escape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Table index of each value (its row's offset and escape index given per value) and the
    mask of values that fall outside their row and are coded as the escape symbol."""
    idx = values.astype(np.int64) - offsets
    esc = (idx < 0) | (idx >= escape)
    idx[esc] = escape[esc]
    return idx, esc


def _groups(rows: np.ndarray) -> tuple[np.ndarray | None, list[tuple[int, int, int]]]:
    """``rows`` as a small unsigned key, and the (row, start, end) runs of the stably sorted order.

    Rows broadcast along all but the first axis with strictly increasing rows there (one table per
    channel, as the factorized stages pass them) are runs already: no key (None), nothing read.
    """
    if rows.ndim >= 2 and rows.size and not any(rows.strides[1:]):
        lead = rows[(slice(None),) + (0,) * (rows.ndim - 1)]
        if bool(np.all(lead[1:] > lead[:-1])):
            per = rows.size // len(lead)
            return None, [(int(r), i * per, (i + 1) * per) for i, r in enumerate(lead)]
    n_rows = int(rows.max()) + 1 if rows.size else 0
    key = rows.astype(np.uint8 if n_rows <= 256 else np.uint16 if n_rows <= 65536 else np.int64).ravel()
    counts = np.bincount(key, minlength=n_rows)
    ends = np.cumsum(counts)
    return key, [(int(r), int(ends[r] - counts[r]), int(ends[r])) for r in np.flatnonzero(counts)]


def _order(key: np.ndarray | None, groups: list[tuple[int, int, int]]) -> np.ndarray | None:
    """Stable order that sorts ``key``, or None if it is sorted already (one table per channel).

    The key is uint8/uint16, for which numpy's stable sort is a linear-time radix sort (10x faster
    than sorting int64 here).
    """
    if key is None or len(groups) <= 1 or bool(np.all(key[1:] >= key[:-1])):
        return None
    return np.argsort(key, kind="stable")


def _sorted(a: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    return a if order is None else a[order]


def _positions(order: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
    """Original positions of the sorted elements selected by ``mask`` (in sorted order)."""
    return np.flatnonzero(mask) if order is None else order[mask]


def _per_run(table: np.ndarray, groups: list[tuple[int, int, int]]) -> np.ndarray:
    """``table[row]`` for every symbol position in sorted order."""
    return np.repeat(table[[g[0] for g in groups]], [g[2] - g[1] for g in groups])


def encode(values: np.ndarray, rows: np.ndarray, tables: CdfTables) -> bytes:
    """Code integer ``values`` (any shape, ``|value| <= VALUE_LIMIT``), each with the table row of
    the same position in ``rows``."""
    values = values.ravel()
    if values.size and int(np.abs(values.astype(np.int64)).max()) > VALUE_LIMIT:
        raise ValueError(f"values beyond +-2^30 cannot be coded (clip latents to {VALUE_LIMIT})")
    key, groups = _groups(rows)
    if not groups:
        return struct.pack("<I", 0)
    order = _order(key, groups)
    idx, esc_sorted = _symbol_indices(_sorted(values, order), _per_run(tables.offsets, groups), _per_run(tables.escape, groups))
    escapes = values[np.sort(_positions(order, esc_sorted))].astype("<i4")  # in position order
    idx = idx.astype(np.int32)
    coder = _AnsCoder()
    for row, s, e in reversed(groups):  # ANS is a stack: last group in, first out
        coder.encode_reverse(idx[s:e], tables.models[row])
    words = coder.get_compressed().astype("<u4")
    info = tables.information(idx, groups)
    if abs(32.0 * len(words) - info) > slack(info, values.size):  # never for natural images, see module doc
        raise ValueError(
            f"these latents code to {len(words)} ANS words for {info:.0f} bits of information, outside the "
            "format's length rule; the image cannot be coded"
        )
    return struct.pack("<I", len(escapes)) + escapes.tobytes() + words.tobytes()


def decode(payload: bytes, rows: np.ndarray, tables: CdfTables) -> np.ndarray:
    """Inverse of :func:`encode`; ``rows`` fixes the shape and the table of every value.

    Refuses (CorruptFileError, naming the container section when ``payload`` carries a ``label``)
    every payload the encoder cannot write: a length that does not account for the symbols, an
    escape of a value its table covers, an escaped value beyond +-2^30, ANS bits left over.
    """
    label = getattr(payload, "label", "coded section")
    shape, n = rows.shape, rows.size  # rows may be a broadcast view: never ravel it into int64
    if len(payload) < 4:
        raise CorruptFileError(f"{label} is shorter than its 4-byte escape count")
    (n_esc,) = struct.unpack_from("<I", payload)
    end_esc = 4 + 4 * n_esc
    if n_esc > n or end_esc > len(payload) or (len(payload) - end_esc) % 4:
        raise CorruptFileError(f"{label} has an impossible length or escape count")
    key, groups = _groups(rows)
    ans_bits = 8.0 * (len(payload) - end_esc)
    least = tables.least_information(groups)
    if least - ans_bits > slack(least, n):  # before anything is decoded or allocated
        raise CorruptFileError(
            f"{label} is too short for its {n} symbols: their tables need at least {least / 8:.0f} "
            f"bytes of ANS data, it holds {ans_bits / 8:.0f} (damaged, or the header claims too large an image)"
        )
    order = _order(key, groups)
    del key
    escapes = np.frombuffer(payload, dtype="<i4", count=n_esc, offset=4)
    words = np.frombuffer(payload, dtype="<u4", offset=end_esc).astype(np.uint32)
    idx = np.empty(n, dtype=np.int32)
    try:
        coder = _AnsCoder(words)
        for row, s, e in groups:
            idx[s:e] = coder.decode(tables.models[row], e - s)
    except Exception as exc:  # constriction signals exhausted or invalid data with various errors
        raise CorruptFileError(f"{label}: entropy-coded data is invalid ({exc})") from None
    if not coder.is_empty():
        raise CorruptFileError(f"{label}: entropy-coded data has bytes left over after the last symbol")
    if not groups:
        return np.empty(shape, dtype=np.int32)
    info = tables.information(idx, groups)
    if abs(ans_bits - info) > slack(info, n):
        raise CorruptFileError(
            f"{label} does not account for its length: its symbols carry {info / 8:.0f} bytes of information, "
            f"its ANS data is {ans_bits / 8:.0f} bytes (the data is damaged)"
        )
    esc_sorted = np.empty(n, dtype=bool)
    for row, s, e in groups:  # table index -> value, in place, run by run
        np.equal(idx[s:e], tables.escape[row], out=esc_sorted[s:e])
        idx[s:e] += np.int32(tables.offsets[row])
    at = np.flatnonzero(esc_sorted)  # sorted positions of the escapes
    del esc_sorted
    if len(at) != n_esc:
        raise CorruptFileError(f"{label}: escape count does not match the coded symbols")
    if order is None:
        values = idx
    else:
        values = np.empty(n, dtype=np.int32)
        values[order] = idx
    if n_esc:
        where = at if order is None else order[at]  # original positions, in sorted order
        rank = np.argsort(where, kind="stable")  # escapes are stored in position order
        run = np.searchsorted([g[1] for g in groups], at[rank], side="right") - 1
        row = np.array([g[0] for g in groups])[run]
        v = escapes.astype(np.int64) - tables.offsets[row]
        if ((v >= 0) & (v < tables.escape[row])).any():
            raise CorruptFileError(f"{label}: an escape codes a value its table covers (non-canonical)")
        if int(np.abs(escapes.astype(np.int64)).max()) > VALUE_LIMIT:
            raise CorruptFileError(f"{label}: an escaped value lies beyond +-2^30 (non-canonical)")
        values[where[rank]] = escapes
    return values.reshape(shape)
