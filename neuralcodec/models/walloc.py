"""WaLLoC (Jacobellis & Yadwadkar, "Learned Compression for Compressed Learning"): a shallow,
asymmetric autoencoder inside an invertible wavelet packet transform.

Encoder: full wavelet packet transform (J levels: RGB -> 3 * 4**J channels at 1 / 2**J
resolution) and one linear 1x1 projection to a small latent, so encoding costs little more than
the transform. Decoder: residual conv blocks at latent resolution back to the packet
coefficients, then the inverse transform. The latent is coded like the factorized prior (a
learned per-channel distribution, one section), with gain units for a continuous quality.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .._compressai import ResidualBlock, conv3x3
from .base import _as_float
from .factorized import FactorizedPrior
from .layers import StableLinear1x1
from .tiling import Span, runs, window, wrapped
from .wpt import _kernels, iwpt, wpt


def wpt_radius(levels: int, wavelet: str, inverse: bool) -> int:
    """Receptive-field radius, in latent positions, of the packet transform (periodized, so
    it wraps around the image). Each level reads ``r`` coefficients either side at its input
    resolution (analysis: its filter taps; synthesis: its polyphase pads); a level's input
    positions are 2**-l latent positions wide, l = 0..J-1 for the synthesis (from the
    latent up) and l = 1..J for the analysis (from the latent's children down to the pixels)."""
    ka, pa, _, ps, qs = _kernels(wavelet)
    r = max(ps, qs) if inverse else max(pa, ka.shape[0] - 1 - pa)
    first = 0 if inverse else 1
    return math.ceil(sum(r / 2**l for l in range(first, first + levels)))


class WaveletPacket(nn.Module):
    """Image in [0, 1] -> centred packet coefficients (or back, with ``inverse``)."""

    def __init__(self, levels: int, wavelet: str, inverse: bool = False) -> None:
        super().__init__()
        self.levels, self.wavelet, self.inverse = levels, wavelet, inverse

    def forward(self, x: Tensor) -> Tensor:
        if self.inverse:
            return iwpt(x, self.levels, self.wavelet) + 0.5
        return wpt(x - 0.5, self.levels, self.wavelet)


class WaLLoC(FactorizedPrior):
    def __init__(self, latent: int = 48, levels: int = 6, J: int = 4, wavelet: str = "bior4.4",
                 width: int = 192, blocks: int = 3) -> None:
        packets = 3 * 4**J
        g_a = nn.Sequential(WaveletPacket(J, wavelet), StableLinear1x1(packets, latent))
        g_s = nn.Sequential(
            conv3x3(latent, width), *[ResidualBlock(width, width) for _ in range(blocks)],
            conv3x3(width, packets), WaveletPacket(J, wavelet, inverse=True),
        )
        super().__init__(levels=levels, M=latent, g_a=g_a, g_s=g_s)
        self.downsampling = self.latent_stride = 2**J
        # Both packet transforms wrap around the image (periodized), the residual decoder
        # before the inverse one pads with zeros: tiles gather the wrapped neighbours.
        self.analysis_margin = wpt_radius(J, wavelet, inverse=False)
        self.wavelet_margin = wpt_radius(J, wavelet, inverse=True)
        self.synthesis_margin = 2 * (blocks + 1)  # conv3x3 x (2 * blocks + 2)
        self.tile = self.tile_above = 128  # larger tiles: the two margins add up to 14 positions

    def _analysis_tile(self, x: Tensor, rows: Span, cols: Span) -> Tensor:
        m = self.analysis_margin
        y = self.g_a(_as_float(wrapped(x, rows, cols, m, self.latent_stride)))
        return y[..., m:-m, m:-m]

    def _synthesis_tile(self, latent: Tensor, quality: float, rows: Span, cols: Span) -> Tensor:
        """Packet coefficients over the tile and its wrapped neighbours (each contiguous piece
        from the residual decoder on a zero-padded window), then the inverse transform."""
        decoder, inverse = self.g_s[:-1], self.g_s[-1]
        h, w = latent.shape[-2:]
        m, mc = self.wavelet_margin, self.synthesis_margin

        def coefficients(r: Span, c: Span) -> Tensor:
            (r0, r1), (c0, c1) = window(r, mc, h), window(c, mc, w)
            out = decoder(latent[..., r0:r1, c0:c1].contiguous())
            return out[..., r[0] - r0 : r[1] - r0, c[0] - c0 : c[1] - c0]

        pieces = [torch.cat([coefficients(r, c) for c in runs(cols, m, w)], -1) for r in runs(rows, m, h)]
        s = m * self.latent_stride
        return inverse(torch.cat(pieces, -2))[..., s:-s, s:-s]
