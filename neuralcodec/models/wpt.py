"""Invertible wavelet packet transform (WPT) in torch, batched, on any device.

One level splits every channel into four periodized sub-bands (LL, LH, HL, HH: channels x4,
height and width /2); ``J`` levels split every sub-band again (a full packet), so RGB with J=4
gives 768 channels at 1/16 resolution.

Each 1-D periodized DWT of length ``n`` is a fixed linear map whose analysis and synthesis
matrices are built once per (wavelet, n) from PyWavelets (the reference implementation, mode
``periodization``) applied to unit vectors; forward and inverse therefore agree with PyWavelets
and invert each other to float32 round-off. The maps are circulant with stride 2: the taps and
their alignment are read off the matrices, and a level runs as one 2-D convolution (analysis:
4 separable-product kernels with stride 2; synthesis: polyphase kernels and a pixel shuffle) of
the circularly padded input, 5-10x faster on CPU than separable 1-D passes. Inputs too small to
pad circularly use the 1-D maps (dense matrices up to ``_DIRECT_MAX``, strided windows above).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

WAVELETS = ("haar", "bior4.4")  # bior4.4 is the CDF 9/7 wavelet


@lru_cache(maxsize=64)
def _matrices(wavelet: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(analysis, synthesis) float64 (n, n) matrices: analysis @ x = [approximation; detail]."""
    import pywt

    if wavelet not in WAVELETS:
        raise ValueError(f"unsupported wavelet '{wavelet}' (supported: {', '.join(WAVELETS)})")
    if n % 2:
        raise ValueError(f"periodized DWT needs an even length, got {n}")
    eye = np.eye(n)
    analysis = np.stack([np.concatenate(pywt.dwt(e, wavelet, mode="periodization")) for e in eye], 1)
    half = n // 2
    synthesis = np.stack(
        [pywt.idwt(e[:half], e[half:], wavelet, mode="periodization") for e in eye], 1
    )
    return analysis, synthesis


_DIRECT_MAX = 32  # lengths up to this use the dense matrices directly
_CONV_MIN = 16  # levels whose input sides are all at least this run as 2-D convolutions (pads <= 4)
_TAPS_N = 64  # length at which the convolution taps are read off the matrices


def _matrix(wavelet: str, n: int, inverse: bool, like: Tensor) -> Tensor:
    return torch.from_numpy(_matrices(wavelet, n)[1 if inverse else 0]).to(like.device, like.dtype)


@lru_cache(maxsize=8)
def _kernels(wavelet: str) -> tuple[np.ndarray, int, np.ndarray, int, int]:
    """Taps read off the matrices (they are circulant with stride 2).

    Analysis: ``out[k, band] = sum_t xpad[2k + t] * ka[t, band]``, ``xpad`` the input padded
    circularly by ``pa`` on the left. Synthesis (polyphase): ``x[2p + r] = sum_t cpad[p + t, band]
    * ks[band, t, r]``, ``cpad`` the coefficients padded circularly by ``ps`` on the left and
    ``qs`` on the right.
    """
    a, s = _matrices(wavelet, _TAPS_N)
    n, half = _TAPS_N, _TAPS_N // 2
    wrap = lambda j: ((j + n // 2) % n) - n // 2  # noqa: E731  signed offset of index j

    rows = [a[0], a[half]]  # first low and first high output: offsets from input position 0
    offs = [wrap(j) for r in rows for j in np.flatnonzero(np.abs(r) > 1e-14)]
    lo, hi = min(offs), max(offs)
    ka = np.array([[r[o % n] for r in rows] for o in range(lo, hi + 1)])  # (L, 2)
    cols = [s[:, 0], s[:, half]]  # contribution of the first low / high coefficient
    offs = [wrap(j) for c in cols for j in np.flatnonzero(np.abs(c) > 1e-14)]
    i_lo, i_hi = (min(offs) - 1) // 2, max(offs) // 2 + 1  # x[2p + r] gets c[p - i] * col[2i + r]
    width = i_hi - i_lo + 1
    ks = np.zeros((2, width, 2))
    for b, c in enumerate(cols):
        for t in range(width):
            for r in range(2):
                j = 2 * (i_hi - t) + r
                if abs(j) < n // 2:
                    ks[b, t, r] = c[j % n]
    return ka, -lo, ks.reshape(2 * width, 2), i_hi, -i_lo


def _dwt_last(x: Tensor, wavelet: str) -> Tensor:
    """Periodized DWT along the last axis: (..., n) -> (..., 2, n/2) (low, high)."""
    n = x.shape[-1]
    lead = x.shape[:-1]
    if n <= _DIRECT_MAX:
        return (x @ _matrix(wavelet, n, False, x).T).reshape(*lead, 2, n // 2)
    ka, pa, _, _, _ = _kernels(wavelet)
    L = ka.shape[0]
    xp = F.pad(x.reshape(-1, 1, n), (pa, L - 1 - pa), mode="circular")[:, 0]
    y = xp.unfold(-1, L, 2) @ torch.from_numpy(ka).to(x.device, x.dtype)  # (N, n/2, 2)
    return y.transpose(1, 2).reshape(*lead, 2, n // 2)


def _idwt_last(x: Tensor, wavelet: str) -> Tensor:
    """Inverse of :func:`_dwt_last`: (..., 2, n/2) -> (..., n)."""
    half = x.shape[-1]
    n, lead = 2 * half, x.shape[:-2]
    if n <= _DIRECT_MAX:
        return x.reshape(*lead, n) @ _matrix(wavelet, n, True, x).T
    _, _, ks, ps, qs = _kernels(wavelet)
    width = ks.shape[0] // 2
    cp = F.pad(x.reshape(-1, 2, half), (ps, qs), mode="circular")
    windows = cp.unfold(-1, width, 1).permute(0, 2, 1, 3).reshape(-1, half, 2 * width)  # (N, h, band*t)
    y = windows @ torch.from_numpy(ks).to(x.device, x.dtype)  # (N, h, 2): x[2p + r]
    return y.reshape(*lead, n)


@lru_cache(maxsize=8)
def _kernels_2d(wavelet: str) -> tuple[Tensor, Tensor]:
    """float64 2-D kernels: analysis (4 bands, 1, L, L) and synthesis (4 phases, 4 bands, w, w)."""
    ka, _, ks, _, _ = _kernels(wavelet)
    L, width = ka.shape[0], ks.shape[0] // 2
    analysis = np.einsum("sa,tb->abst", ka, ka).reshape(4, 1, L, L)
    k = ks.reshape(2, width, 2)  # (band, tap, phase)
    synthesis = np.einsum("atr,bvu->ruabtv", k, k).reshape(4, 4, width, width)  # (phase_h, phase_w), (band_h, band_w)
    return torch.from_numpy(analysis), torch.from_numpy(synthesis)


def _conv_level(x: Tensor, wavelet: str) -> Tensor:
    B, C, H, W = x.shape
    _, pa, _, _, _ = _kernels(wavelet)
    kernel = _kernels_2d(wavelet)[0].to(x.device, x.dtype)
    L = kernel.shape[-1]
    xp = F.pad(x.reshape(B * C, 1, H, W), (pa, L - 1 - pa, pa, L - 1 - pa), mode="circular")
    return F.conv2d(xp, kernel, stride=2).reshape(B, C * 4, H // 2, W // 2)


def _conv_inverse_level(x: Tensor, wavelet: str) -> Tensor:
    B, C4, h, w = x.shape
    _, _, _, ps, qs = _kernels(wavelet)
    xp = F.pad(x.reshape(B * C4 // 4, 4, h, w), (ps, qs, ps, qs), mode="circular")
    y = F.pixel_shuffle(F.conv2d(xp, _kernels_2d(wavelet)[1].to(x.device, x.dtype)), 2)
    return y.reshape(B, C4 // 4, 2 * h, 2 * w)


def _level(x: Tensor, wavelet: str) -> Tensor:
    B, C, H, W = x.shape
    if min(H, W) >= _CONV_MIN:
        return _conv_level(x, wavelet)
    x = _dwt_last(x, wavelet)  # (B, C, H, 2, W/2): bands along width
    x = _dwt_last(x.permute(0, 1, 3, 4, 2), wavelet)  # (B, C, 2w, W/2, 2h, H/2)
    x = x.permute(0, 1, 4, 2, 5, 3)  # (B, C, band_h, band_w, H/2, W/2)
    return x.reshape(B, C * 4, H // 2, W // 2)


def _inverse_level(x: Tensor, wavelet: str) -> Tensor:
    B, C4, h, w = x.shape
    if min(h, w) >= _CONV_MIN // 2:
        return _conv_inverse_level(x, wavelet)
    x = x.reshape(B, C4 // 4, 2, 2, h, w).permute(0, 1, 3, 5, 2, 4)  # (B, C, band_w, w, band_h, h)
    x = _idwt_last(x, wavelet)  # (B, C, band_w, w, 2h)
    x = _idwt_last(x.permute(0, 1, 4, 2, 3), wavelet)  # (B, C, 2h, 2w)
    return x


def wpt(x: Tensor, levels: int, wavelet: str = "bior4.4") -> Tensor:
    """Full wavelet packet transform: (B, C, H, W) -> (B, C * 4**levels, H / 2**levels, W / 2**levels).
    H and W must be multiples of ``2**levels`` (pad first)."""
    k = 2**levels
    if x.shape[-1] % k or x.shape[-2] % k:
        raise ValueError(f"height and width must be multiples of {k}, got {tuple(x.shape[-2:])}")
    for _ in range(levels):
        x = _level(x, wavelet)
    return x


def iwpt(x: Tensor, levels: int, wavelet: str = "bior4.4") -> Tensor:
    """Inverse of :func:`wpt`."""
    for _ in range(levels):
        x = _inverse_level(x, wavelet)
    return x
