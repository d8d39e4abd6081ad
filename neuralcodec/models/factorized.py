"""Factorized prior (Balle et al. 2018, "bmshj2018-factorized") with gain units.

The latent ``y`` is coded with one learned distribution per channel (compressai's
EntropyBottleneck) and no side information: one entropy stage, one section.
"""

from __future__ import annotations

import torch
from compressai.entropy_models import EntropyBottleneck
from torch import Tensor, nn

from ..entropy import FactorizedStage
from .base import Coded, ImageCodec
from .gain import GainUnits
from .transforms import analysis, ste_round, synthesis


class FactorizedPrior(ImageCodec):
    downsampling = 16

    def __init__(self, N: int = 128, M: int = 192, levels: int = 6, g_a: nn.Module | None = None,
                 g_s: nn.Module | None = None) -> None:
        super().__init__()
        self.g_a = g_a if g_a is not None else analysis(N, M)
        self.g_s = g_s if g_s is not None else synthesis(N, M)
        self.gain = GainUnits(M, levels)
        self.entropy_bottleneck = EntropyBottleneck(M)

    @property
    def levels(self) -> int:
        return self.gain.levels

    def forward(self, x: Tensor, quality: Tensor, ste: bool = True) -> dict[str, Tensor]:
        """Training pass: noisy likelihoods for the rate, rounded (``ste``) or noisy latents to the decoder."""
        g, ig = self.gain(quality)
        y = self.g_a(x) * g
        y_noisy, y_lik = self.entropy_bottleneck(y)
        if ste or not self.training:
            medians = self.entropy_bottleneck._get_medians().detach()
            y_hat = ste_round(y - medians) + medians
        else:
            y_hat = y_noisy
        return {"x_hat": self.g_s(y_hat * ig), "y_likelihoods": y_lik}

    def prepare_for_coding(self) -> None:
        self._y_stage = FactorizedStage(self.entropy_bottleneck)

    def export_tables(self) -> None:
        with torch.no_grad():
            self.entropy_bottleneck.update(force=True, update_quantiles=True)

    @torch.no_grad()
    def compress(self, x: Tensor, quality: float, reconstruct: bool = True) -> list[Coded]:
        g, _ = self.gain(torch.full((x.shape[0],), float(quality), device=x.device))
        y_sym = self._y_stage.quantize(self.g_a(x) * g)
        y_hat = self._y_stage.dequantize(y_sym)
        x_hat = self.synthesize(y_hat, quality) if reconstruct else None
        y_np = y_sym.cpu().numpy()
        return [
            Coded([self._y_stage.encode(y_np[i])], self.latent_digest([y_np[i]]),
                  x_hat[i : i + 1] if x_hat is not None else None, y_hat[i : i + 1])
            for i in range(x.shape[0])
        ]

    @torch.no_grad()
    def decode_latent(self, sections: list[bytes], height: int, width: int, quality: float, device: str = "cpu") -> tuple[Tensor, bytes]:
        self.check_sections(sections, 1)
        k = self.downsampling
        y_sym = self._y_stage.decode(sections[0], (height // k, width // k))
        y_hat = self._y_stage.dequantize(torch.from_numpy(y_sym).to(device)[None])
        return y_hat, self.latent_digest([y_sym])
