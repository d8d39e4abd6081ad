"""Entropy stages: turn latents into integer symbols and table rows, and symbols into bytes.

Each stage works on whole batches of tensors on the model's device; only symbols and table
indices cross to numpy for the coder. Coding parameters are integers (table index, mean in
1/256 steps), so coding is a pure function of integers once they are computed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from torch import Tensor

from . import coder

# Latent magnitudes beyond this are clipped before rounding (documented in docs/bitstream.md);
# the escape mechanism codes every int32 value that fits under it.
LATENT_LIMIT = 2**30
MEAN_STEPS = 256  # means are quantized to multiples of 1/MEAN_STEPS


def default_scale_table(low: float = 0.11, high: float = 256.0, levels: int = 64) -> list[float]:
    """Log-spaced Gaussian scales; predicted scales snap to one of these table entries."""
    return [math.exp(math.log(low) + i * (math.log(high) - math.log(low)) / (levels - 1)) for i in range(levels)]


def _round_to_int(x: Tensor) -> Tensor:
    return torch.round(x).clamp_(-LATENT_LIMIT, LATENT_LIMIT).to(torch.int32)


def _tables(model) -> coder.CdfTables:
    if model._quantized_cdf.numel() == 0:
        raise RuntimeError("coding tables are missing: call export_tables() before saving weights")
    return coder.CdfTables(
        model._quantized_cdf.cpu().numpy(), model._cdf_length.cpu().numpy(), model._offset.cpu().numpy()
    )


class FactorizedStage:
    """Per-channel learned distribution (compressai EntropyBottleneck) around its median."""

    def __init__(self, bottleneck: EntropyBottleneck) -> None:
        self.medians = bottleneck.quantiles[:, 0, 1].detach().clone()
        self.channels = self.medians.numel()
        self.tables = _tables(bottleneck)

    def quantize(self, z: Tensor) -> Tensor:
        return _round_to_int(z.double() - self.medians.to(z.device, torch.float64)[None, :, None, None])

    def dequantize(self, symbols: Tensor) -> Tensor:
        """Dequantized values in standard (NCHW-contiguous) layout, as the decoder produces them."""
        z_hat = symbols.double() + self.medians.to(symbols.device, torch.float64)[None, :, None, None]
        return z_hat.float().contiguous()

    def _rows(self, shape: tuple[int, int]) -> np.ndarray:
        return np.broadcast_to(np.arange(self.channels)[:, None, None], (self.channels, *shape))

    def encode(self, symbols: np.ndarray) -> bytes:
        """Code one image's symbols (C, h, w)."""
        return coder.encode(symbols, self._rows(symbols.shape[1:]), self.tables)

    def decode(self, payload: bytes, shape: tuple[int, int]) -> np.ndarray:
        return coder.decode(payload, self._rows(shape), self.tables)


class GaussianStage:
    """Gaussian conditional with scales snapped to a fixed table and quantized means."""

    def __init__(self, conditional: GaussianConditional) -> None:
        table = conditional.scale_table.detach().double()
        self.bounds = table[:-1].clone()  # index i covers (table[i-1], table[i]]
        self.scale_floor = float(conditional.lower_bound_scale.bound)
        self.tables = _tables(conditional)

    def parameters(self, scales: Tensor, means: Tensor | None) -> tuple[Tensor, Tensor]:
        """Table indices and integer means (in 1/256 units) from float64 network outputs."""
        scales = scales.double().clamp(min=self.scale_floor)
        indexes = torch.bucketize(scales, self.bounds.to(scales.device))
        if means is None:
            means_q = torch.zeros_like(indexes)
        else:
            means_q = torch.round(means.double() * MEAN_STEPS).clamp_(-LATENT_LIMIT, LATENT_LIMIT).long()
        return indexes.to(torch.int32), means_q

    @staticmethod
    def quantize(y: Tensor, means_q: Tensor) -> Tensor:
        return _round_to_int(y.double() - means_q.double() / MEAN_STEPS)

    @staticmethod
    def dequantize(symbols: Tensor, means_q: Tensor) -> Tensor:
        """Dequantized values in standard (NCHW-contiguous) layout, as the decoder produces them.

        Layout matters: a channels-last tensor makes the synthesis pick other kernels whose
        round-off differs, and the reconstruction would no longer match the decoder's bit for bit.
        """
        return GaussianStage.values(symbols, means_q).float().contiguous()

    @staticmethod
    def values(symbols: Tensor, means_q: Tensor) -> Tensor:
        """Dequantized values in float64 (what context models condition on)."""
        return symbols.double() + means_q.double() / MEAN_STEPS

    def encode(self, symbols: np.ndarray, indexes: np.ndarray) -> bytes:
        return coder.encode(symbols, indexes, self.tables)

    def decode(self, payload: bytes, indexes: np.ndarray) -> np.ndarray:
        return coder.decode(payload, indexes, self.tables)
