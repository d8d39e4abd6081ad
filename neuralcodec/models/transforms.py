"""Analysis and synthesis transforms shared by the image models (compressai conv layers + GDN)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .._compressai import conv, deconv
from .layers import StableGDN as GDN


def analysis(N: int, M: int) -> nn.Sequential:
    """Image (3 channels) to latent (M channels) at 1/16 resolution."""
    return nn.Sequential(conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, N), GDN(N), conv(N, M))


def synthesis(N: int, M: int) -> nn.Sequential:
    """Latent (M channels) back to an image at 16x its resolution."""
    return nn.Sequential(
        deconv(M, N), GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True),
        deconv(N, N), GDN(N, inverse=True), deconv(N, 3),
    )


def ste_round(x: Tensor) -> Tensor:
    """Round in the forward pass, identity gradient in the backward pass."""
    return x + (torch.round(x) - x).detach()


# What stands in for rounding in a differentiable pass: rounds a tensor to integers, or relaxes it.
Rounder = Callable[[Tensor], Tensor]
