"""Invertible wavelet packet transform (WPT) in torch, batched, on any device.

One level splits every channel into four periodized sub-bands (LL, LH, HL, HH: channels x4,
height and width /2); ``J`` levels split every sub-band again (a full packet), so RGB with J=4
gives 768 channels at 1/16 resolution.

Each 1-D periodized DWT of length ``n`` is a fixed linear map. Its analysis and synthesis
matrices are built once per (wavelet, n) from PyWavelets (the reference implementation, mode
``periodization``) applied to unit vectors, then applied as matrix products along each axis, so
forward and inverse agree with PyWavelets and invert each other to float32 round-off.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
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


def _matrix(wavelet: str, n: int, inverse: bool, like: Tensor) -> Tensor:
    return torch.from_numpy(_matrices(wavelet, n)[1 if inverse else 0]).to(like.device, like.dtype)


def _level(x: Tensor, wavelet: str) -> Tensor:
    B, C, H, W = x.shape
    x = x @ _matrix(wavelet, W, False, x).T  # along width: [low | high]
    x = _matrix(wavelet, H, False, x) @ x  # along height: [low ; high]
    x = x.reshape(B, C, 2, H // 2, 2, W // 2).permute(0, 1, 2, 4, 3, 5)
    return x.reshape(B, C * 4, H // 2, W // 2)


def _inverse_level(x: Tensor, wavelet: str) -> Tensor:
    B, C4, h, w = x.shape
    x = x.reshape(B, C4 // 4, 2, 2, h, w).permute(0, 1, 2, 4, 3, 5).reshape(B, C4 // 4, 2 * h, 2 * w)
    x = _matrix(wavelet, 2 * h, True, x) @ x
    return x @ _matrix(wavelet, 2 * w, True, x).T


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
