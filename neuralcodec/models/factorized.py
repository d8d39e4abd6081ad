"""Factorized prior (Balle et al. 2018, "bmshj2018-factorized") with a continuous quality.

The latent ``y`` is coded with one learned distribution per channel (compressai's
EntropyBottleneck) and no side information: one entropy stage, one section. The quality sets a
per-channel quantization step ``1 / gain`` (gain units without a learned inverse), and the
probability of each quantization bin is the learned density's mass over that bin, so one density
codes every quality exactly (a gain in front of a fixed density would make it fit none well).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._compressai import EntropyBottleneck
from ..entropy import SteppedFactorizedStage
from .base import Coded, ImageCodec
from .gain import GainUnits
from .transforms import Rounder, analysis, ste_round, synthesis


class FactorizedPrior(ImageCodec):
    downsampling = 16

    def __init__(self, N: int = 128, M: int = 192, levels: int = 6, g_a: nn.Module | None = None,
                 g_s: nn.Module | None = None) -> None:
        super().__init__()
        self.g_a = g_a if g_a is not None else analysis(N, M)
        self.g_s = g_s if g_s is not None else synthesis(N, M)
        self.gain = GainUnits(M, levels, inverse=False)
        self.entropy_bottleneck = EntropyBottleneck(M)

    @property
    def levels(self) -> int:
        return self.gain.levels

    def _likelihood(self, y: Tensor, step: Tensor) -> Tensor:
        """Mass of the learned density over the bin of width ``step`` (B, C, 1, 1) around each ``y``."""
        eb = self.entropy_bottleneck
        C = y.shape[1]
        v = y.transpose(0, 1).reshape(C, 1, -1)
        h = (step.expand_as(y) / 2).transpose(0, 1).reshape(C, 1, -1)
        upper = eb._logits_cumulative(v + h, stop_gradient=False)
        lower = eb._logits_cumulative(v - h, stop_gradient=False)
        # sigmoid(u) - sigmoid(l) computed on the side of the median where it does not cancel
        sign = -torch.sign(upper + lower).detach()
        lik = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
        lik = eb.likelihood_lower_bound(lik)
        return lik.reshape(C, y.shape[0], *y.shape[2:]).transpose(0, 1)

    def forward(self, x: Tensor, quality: Tensor, ste: bool = True) -> dict[str, Tensor]:
        """Training pass: likelihoods of noisy latents for the rate, rounded (``ste``) or noisy latents to the decoder."""
        g, _ = self.gain(quality)
        step = 1 / g
        y = self.g_a(x)
        m = self.entropy_bottleneck._get_medians().detach().reshape(1, -1, 1, 1)
        y_rounded = m + ste_round((y - m) * g) * step
        if self.training:
            y_noisy = y + (torch.rand_like(y) - 0.5) * step
        else:
            y_noisy = y_rounded
        y_lik = self._likelihood(y_noisy, step)
        y_hat = y_rounded if ste or not self.training else y_noisy
        return {"x_hat": self.g_s(y_hat), "y_likelihoods": y_lik}

    def prepare_for_coding(self) -> None:
        self._y_stage = SteppedFactorizedStage(self.entropy_bottleneck)

    def export_tables(self) -> None:
        """Only the quantiles are needed: the integer tables of a quality are built when it is used."""
        with torch.no_grad():
            self.entropy_bottleneck.update(force=True, update_quantiles=True)

    def synthesis_input(self, latent: Tensor, quality: float) -> Tensor:
        return latent  # the latent is dequantized with its step already

    def _code(self, y_sym: Tensor, gain: Tensor, quality: float, reconstruct: bool) -> list[Coded]:
        """Entropy-code quantized symbols (B, M, h, w): one section and digest per image."""
        y_hat = self._y_stage.dequantize(y_sym, gain)
        x_hat = self.synthesize(y_hat, quality) if reconstruct else None
        y_np = y_sym.cpu().numpy()
        return [
            Coded([self._y_stage.encode(y_np[i], gain)], self.latent_digest([y_np[i]]),
                  x_hat[i : i + 1] if x_hat is not None else None, y_hat[i : i + 1])
            for i in range(y_sym.shape[0])
        ]

    @torch.no_grad()
    def compress(self, x: Tensor, quality: float, reconstruct: bool = True) -> list[Coded]:
        gain = self.gain.gain64(quality)
        y_sym = self._y_stage.quantize(self.transform_image(x), gain)
        return self._code(y_sym, gain, quality, reconstruct)

    # ---- encoder-side refinement (models/refine.py): the latent in quantization bins --------

    def _bins(self, quality: float, device: torch.device) -> tuple[Tensor, Tensor]:
        """Medians and gain (1, C, 1, 1): a latent in bins is ``(y - median) * gain``."""
        g, _ = self.gain(torch.full((1,), float(quality), device=device))
        return self.entropy_bottleneck._get_medians().detach().reshape(1, -1, 1, 1), g

    @torch.no_grad()
    def analyze(self, x: Tensor, quality: float) -> tuple[Tensor, None]:
        """The latent (B, M, H/16, W/16) in quantization bins (one bin is 1 wide); no hyper-latent."""
        m, g = self._bins(quality, x.device)
        return (self.transform_image(x) - m) * g, None

    def relaxed(self, u: Tensor, z: None, quality: float, rounder: Rounder) -> tuple[Tensor, list[Tensor]]:
        """Differentiable stand-in for :meth:`compress_latents`: synthesis output and likelihoods."""
        m, g = self._bins(quality, u.device)
        y_hat = m + rounder(u) / g
        with torch.autocast(u.device.type, enabled=False):  # the density needs float32 (bf16 underflows)
            lik = self._likelihood(y_hat.float(), 1 / g)
        return self.g_s(y_hat), [lik]

    @torch.no_grad()
    def compress_latents(self, u: Tensor, z: None, quality: float, reconstruct: bool = True) -> list[Coded]:
        """Code a latent given in bins (as :meth:`analyze` returns it, or refined)."""
        gain = self.gain.gain64(quality)
        m = self._y_stage.medians.to(u.device)[None, :, None, None]
        y_sym = self._y_stage.quantize(u.double() / gain.to(u.device)[None, :, None, None] + m, gain)
        return self._code(y_sym, gain, quality, reconstruct)

    @torch.no_grad()
    def decode_latent(self, sections: list[bytes], height: int, width: int, quality: float, device: str = "cpu") -> tuple[Tensor, bytes]:
        self.check_sections(sections, 1)
        k = self.downsampling
        gain = self.gain.gain64(quality)
        y_sym = self._y_stage.decode(sections[0], (height // k, width // k), gain)
        y_hat = self._y_stage.dequantize(torch.from_numpy(y_sym).to(device)[None], gain)
        return y_hat, self.latent_digest([y_sym])
