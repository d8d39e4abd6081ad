"""WaLLoC (Jacobellis & Yadwadkar, "Learned Compression for Compressed Learning"): a shallow,
asymmetric autoencoder inside an invertible wavelet packet transform.

Encoder: full wavelet packet transform (J levels: RGB -> 3 * 4**J channels at 1 / 2**J
resolution) and one linear 1x1 projection to a small latent, so encoding costs little more than
the transform. Decoder: residual conv blocks at latent resolution back to the packet
coefficients, then the inverse transform. The latent is coded like the factorized prior (a
learned per-channel distribution, one section), with gain units for a continuous quality.
"""

from __future__ import annotations

from compressai.layers import ResidualBlock, conv3x3
from torch import Tensor, nn

from .factorized import FactorizedPrior
from .layers import StableLinear1x1
from .wpt import iwpt, wpt


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
        self.downsampling = 2**J
