"""Gain units: one model, a continuous range of rates (Cui et al. 2021, "asymmetric gained" coding).

The latent is multiplied channel-wise by a gain vector before quantization and by an inverse
gain vector after; a larger gain means finer quantization and a higher rate. Each of ``levels``
trained operating points has its own pair of vectors; a fractional quality interpolates them
geometrically, so ``quality`` is any float in ``[1, levels]``. Qualities in ``[0, 1)`` extrapolate
the first two levels' gains geometrically (untrained operating points: measure before shipping).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class GainUnits(nn.Module):
    def __init__(self, channels: int, levels: int, inverse: bool = True) -> None:
        super().__init__()
        if levels < 2:
            raise ValueError("gain units need at least two levels")
        self.levels = levels
        # Start with gains a factor sqrt(2) apart per level, the top level at 1.
        init = torch.tensor([(i - (levels - 1)) * 0.5 * math.log(2.0) for i in range(levels)])
        self.log_gain = nn.Parameter(init[:, None].repeat(1, channels))
        # Without a learned inverse, the inverse gain is exactly 1 / gain.
        self.log_inv_gain = nn.Parameter(-init[:, None].repeat(1, channels)) if inverse else None

    @staticmethod
    def _interpolate(table: Tensor, quality: Tensor) -> Tensor:
        pos = (quality.to(table.dtype) - 1.0).clamp(-1, table.shape[0] - 1)
        low = pos.floor().long().clamp(0, table.shape[0] - 2)
        t = (pos - low.to(pos.dtype))[:, None]
        return table[low] * (1 - t) + table[low + 1] * t

    def forward(self, quality: Tensor) -> tuple[Tensor, Tensor]:
        """Gain and inverse gain, shaped (B, C, 1, 1), for a batch of float qualities in [1, L]."""
        log_g = self._interpolate(self.log_gain, quality)
        log_ig = -log_g if self.log_inv_gain is None else self._interpolate(self.log_inv_gain, quality)
        return log_g.exp()[:, :, None, None], log_ig.exp()[:, :, None, None]

    def gain64(self, quality: float) -> Tensor:
        """Gain vector (C,) of one quality in float64 (what entropy-coding tables are built from)."""
        q = torch.tensor([float(quality)], dtype=torch.float64)
        return self._interpolate(self.log_gain.detach().cpu().double(), q)[0].exp()
