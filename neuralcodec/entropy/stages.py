"""Entropy stages: turn latents into integer symbols and table rows, and symbols into bytes.

Each stage works on whole batches of tensors on the model's device; only symbols and table
indices cross to numpy for the coder. Coding parameters are integers (table index, mean in
1/256 steps), so coding is a pure function of integers once they are computed.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict

import numpy as np
import torch
from torch import Tensor

from .._compressai import EntropyBottleneck, GaussianConditional
from . import coder

# Latent magnitudes beyond this are clipped before rounding (documented in docs/bitstream.md);
# the escape mechanism codes every int32 value that fits under it.
LATENT_LIMIT = coder.VALUE_LIMIT
MEAN_STEPS = 256  # means are quantized to multiples of 1/MEAN_STEPS


def default_scale_table(low: float = 0.11, high: float = 256.0, levels: int = 64) -> list[float]:
    """Log-spaced Gaussian scales; predicted scales snap to one of these table entries."""
    return [math.exp(math.log(low) + i * (math.log(high) - math.log(low)) / (levels - 1)) for i in range(levels)]


def _round_to_int(x: Tensor) -> Tensor:
    return torch.round(x).clamp_(-LATENT_LIMIT, LATENT_LIMIT).to(torch.int32)


def _channel_rows(channels: int, shape: tuple[int, int]) -> np.ndarray:
    """Table row of every symbol of a (channels, h, w) latent coded with one table per channel."""
    return np.broadcast_to(np.arange(channels)[:, None, None], (channels, *shape))


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

    def encode(self, symbols: np.ndarray) -> bytes:
        """Code one image's symbols (C, h, w)."""
        return coder.encode(symbols, _channel_rows(self.channels, symbols.shape[1:]), self.tables)

    def decode(self, payload: bytes, shape: tuple[int, int]) -> np.ndarray:
        return coder.decode(payload, _channel_rows(self.channels, shape), self.tables)


class SteppedFactorizedStage:
    """Learned per-channel density (compressai EntropyBottleneck) of ``y`` quantized with a
    per-channel step ``1 / gain``: symbol ``k = round((y - median) * gain)`` has probability
    ``F(median + (k + 1/2) / gain) - F(median + (k - 1/2) / gain)``, ``F`` the learned CDF.

    One density serves every quality exactly; the integer tables of a gain vector are built
    (float64 density, compressai's 16-bit quantization) on first use and cached.
    """

    MAX_HALF_WIDTH = 4096  # symbols beyond this many steps from the median are escapes

    def __init__(self, bottleneck: EntropyBottleneck, cache: int = 8) -> None:
        self.density = copy.deepcopy(bottleneck).cpu().double().eval()
        q = self.density.quantiles.detach()[:, 0, :]
        self.medians, self.low, self.high = q[:, 1].clone(), q[:, 0].clone(), q[:, 2].clone()
        self._cache: OrderedDict[bytes, coder.CdfTables] = OrderedDict()
        self._cache_size = cache

    def quantize(self, y: Tensor, gain: Tensor) -> Tensor:
        """Symbols of ``y`` (B, C, h, w) for a float64 gain vector (C,)."""
        m, g = self.medians.to(y.device)[None, :, None, None], gain.to(y.device)[None, :, None, None]
        return _round_to_int((y.double() - m) * g)

    def dequantize(self, symbols: Tensor, gain: Tensor) -> Tensor:
        """Dequantized ``y`` in standard (NCHW-contiguous) layout, as the decoder produces them."""
        m, g = self.medians.to(symbols.device)[None, :, None, None], gain.to(symbols.device)[None, :, None, None]
        return (symbols.double() / g + m).float().contiguous()

    @torch.no_grad()
    def tables(self, gain: Tensor) -> coder.CdfTables:
        key = gain.double().numpy().tobytes()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        g = gain.double()
        first = torch.floor((self.low - self.medians) * g).clamp(-self.MAX_HALF_WIDTH, 0).long()
        last = torch.ceil((self.high - self.medians) * g).clamp(0, self.MAX_HALF_WIDTH).long()
        length = last - first + 1
        k = first[:, None] + torch.arange(int(length.max()), dtype=torch.int64)[None]  # (C, L)
        edges = self.medians[:, None] + (k.double() - 0.5) / g[:, None]
        edges = torch.cat([edges, edges[:, -1:] + 1 / g[:, None]], 1)  # (C, L + 1)
        cdf = torch.sigmoid(self.density._logits_cumulative(edges[:, None, :], stop_gradient=True))[:, 0]
        pmf = cdf[:, 1:] - cdf[:, :-1]
        tail = cdf[:, :1] + 1 - cdf.gather(1, length[:, None])  # below the first bin + above the last
        quantized = self.density._pmf_to_cdf(pmf.float(), tail.float(), length.int(), int(length.max()))
        tables = coder.CdfTables(quantized.numpy(), (length + 2).numpy(), first.numpy())
        self._cache[key] = tables
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return tables

    def encode(self, symbols: np.ndarray, gain: Tensor) -> bytes:
        """Code one image's symbols (C, h, w)."""
        return coder.encode(symbols, _channel_rows(len(self.medians), symbols.shape[1:]), self.tables(gain))

    def decode(self, payload: bytes, shape: tuple[int, int], gain: Tensor) -> np.ndarray:
        return coder.decode(payload, _channel_rows(len(self.medians), shape), self.tables(gain))


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
