"""Checkerboard coding of a Gaussian latent in two batched passes (He et al. 2021).

Pass 1 codes the *anchors* (row + column even) with parameters from side information only;
pass 2 codes the other positions with parameters that also see the decoded anchors. Each pass is
one call of the caller's parameter function (float64, whole latent) and one coder call.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from .stages import GaussianStage

# params(anchors): float64 scales and means (1, C, h, w); ``anchors`` is None in the first pass,
# then the decoded anchors (float64, zeros at the other positions).
ParamFn = Callable[[Tensor | None], tuple[Tensor, Tensor]]


def anchor_mask(height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
    """Boolean (height, width) mask of the anchor positions: row + column even."""
    r = torch.arange(height, device=device)[:, None]
    c = torch.arange(width, device=device)[None, :]
    return (r + c) % 2 == 0


class CheckerboardStage:
    """Two sections per latent: anchors, then non-anchors (symbols in channel-major order)."""

    sections = 2

    def __init__(self, gaussian: GaussianStage) -> None:
        self.gaussian = gaussian

    def encode(self, y: Tensor, params: ParamFn) -> tuple[list[bytes], list[np.ndarray], Tensor]:
        """Code one latent ``y`` (1, C, h, w); returns the two payloads, the symbols of each pass
        and the dequantized latent (float64), exactly what :meth:`decode` returns."""
        y_hat = torch.zeros(y.shape, dtype=torch.float64, device=y.device)
        anchor = anchor_mask(*y.shape[-2:], device=y.device)
        payloads, symbols = [], []
        for pos, ctx in ((anchor, None), (~anchor, y_hat)):
            indexes, means_q = self.gaussian.parameters(*params(ctx))
            sym = self.gaussian.quantize(y[..., pos], means_q[..., pos])
            y_hat[..., pos] = self.gaussian.values(sym, means_q[..., pos])
            s_np = sym[0].cpu().numpy()
            payloads.append(self.gaussian.encode(s_np, indexes[0][..., pos].cpu().numpy()))
            symbols.append(s_np)
        return payloads, symbols, y_hat

    def decode(self, payloads: list[bytes], shape: tuple[int, int, int], params: ParamFn, device: str = "cpu") -> tuple[Tensor, list[np.ndarray]]:
        """Inverse of :meth:`encode`: ``shape`` is (C, h, w); returns y-hat (1, C, h, w) float64."""
        y_hat = torch.zeros((1, *shape), dtype=torch.float64, device=device)
        anchor = anchor_mask(*shape[-2:], device=device)
        symbols = []
        for payload, (pos, ctx) in zip(payloads, ((anchor, None), (~anchor, y_hat))):
            indexes, means_q = self.gaussian.parameters(*params(ctx))
            sym = self.gaussian.decode(payload, indexes[0][..., pos].cpu().numpy())
            y_hat[..., pos] = self.gaussian.values(torch.from_numpy(sym).to(device)[None], means_q[..., pos])
            symbols.append(sym)
        return y_hat, symbols
