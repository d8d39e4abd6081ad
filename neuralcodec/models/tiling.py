"""Tiles of the latent grid, so the transforms of a large image run in bounded memory.

A transform whose output at a position depends only on inputs within a known radius (its
receptive field) gives the same values on a window of its input extended by that radius,
cropped back, as on the whole input: convolutions with zero padding see the true image border
where the window touches it and real neighbours elsewhere. All coordinates here are latent
positions (rows, columns of the 1/16-resolution grid).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

Span = tuple[int, int]  # [start, end) along one axis


def grid(height: int, width: int, tile: int) -> Iterator[tuple[Span, Span]]:
    """Row and column spans of ``tile`` x ``tile`` tiles covering a (height, width) grid, row-major."""
    for r0 in range(0, height, tile):
        for c0 in range(0, width, tile):
            yield (r0, min(r0 + tile, height)), (c0, min(c0 + tile, width))


def window(span: Span, margin: int, size: int) -> Span:
    """``span`` extended by ``margin`` on both sides, clipped to [0, size)."""
    return max(0, span[0] - margin), min(size, span[1] + margin)


def runs(span: Span, margin: int, size: int) -> list[Span]:
    """``span`` extended by ``margin`` on a periodic axis of length ``size``, as contiguous
    [start, end) pieces inside [0, size) in the order the wrapped indices visit them."""
    out: list[Span] = []
    i, end = span[0] - margin, span[1] + margin
    while i < end:
        start = i % size
        n = min(end - i, size - start)
        out.append((start, start + n))
        i += n
    return out


def wrapped(x: Tensor, rows: Span, cols: Span, margin: int, scale: int = 1) -> Tensor:
    """Window of ``x`` (B, C, H, W) over latent ``rows`` x ``cols`` extended by ``margin`` with
    periodic wrap-around, at ``scale`` input pixels per latent position (contiguous copy)."""
    h, w = x.shape[-2] // scale, x.shape[-1] // scale
    idx_r = torch.cat([torch.arange(a * scale, b * scale) for a, b in runs(rows, margin, h)])
    idx_c = torch.cat([torch.arange(a * scale, b * scale) for a, b in runs(cols, margin, w)])
    return x.index_select(-2, idx_r.to(x.device)).index_select(-1, idx_c.to(x.device))
