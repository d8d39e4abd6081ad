"""Scale hyperprior (Ballé et al. 2018) and mean-scale hyperprior (Minnen et al. 2018).

Both share the analysis/synthesis transforms (conv + GDN, compressai layers) and add gain
units, so a single set of weights covers a continuous range of rates. Coding runs in two
entropy stages: the hyper-latent ``z`` (factorized prior) and then the latent ``y`` (Gaussian,
parameters from ``z``).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from .._compressai import EntropyBottleneck, GaussianConditional, conv, deconv
from .._malloc import release_free_memory
from ..entropy import FactorizedStage, GaussianStage, default_scale_table
from .base import Coded, ImageCodec
from .gain import GainUnits
from .tiling import window
from .transforms import Rounder, analysis, ste_round, synthesis


class Hyperprior(ImageCodec):
    """Hyperprior codec; ``mean=True`` gives the mean-scale variant."""

    downsampling = 64

    def __init__(self, N: int = 128, M: int = 192, levels: int = 6, mean: bool = True) -> None:
        super().__init__()
        self.mean = mean
        self.g_a = analysis(N, M)
        self.g_s = synthesis(N, M)
        act = nn.LeakyReLU if mean else nn.ReLU
        self.h_a = nn.Sequential(
            conv(M, N, stride=1, kernel_size=3), act(inplace=True), conv(N, N), act(inplace=True), conv(N, N)
        )
        out = 2 * M if mean else M
        mid = M * 3 // 2 if mean else N
        self.h_s = nn.Sequential(
            deconv(N, M if mean else N), act(inplace=True), deconv(M if mean else N, mid), act(inplace=True),
            conv(mid, out, stride=1, kernel_size=3), *([] if mean else [nn.ReLU(inplace=True)]),
        )
        self.gain = GainUnits(M, levels)
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional(None)

    @property
    def levels(self) -> int:
        return self.gain.levels

    def _entropy_params(self, z_hat: Tensor, h_s: nn.Module) -> tuple[Tensor, Tensor | None]:
        params = h_s(z_hat)
        if self.mean:
            scales, means = params.chunk(2, 1)
            return scales, means
        return params, None

    def forward(self, x: Tensor, quality: Tensor, ste: bool = True, rate_round: bool = False) -> dict[str, Tensor]:
        """Training pass: noisy likelihoods for the rate (``rate_round=True``: the likelihoods of
        the straight-through rounded latents the coder codes); the decoder gets straight-through
        rounded latents (``ste=True``) or the same noisy latents as the rate term."""
        g, ig = self.gain(quality)
        y = self.g_a(x) * g
        z = self.h_a(y if self.mean else y.abs())
        z_hat, z_lik = self._relaxed_z(z, ste_round) if rate_round else self.entropy_bottleneck(z)
        scales, means = self._entropy_params(z_hat, self.h_s)
        y_noisy, y_lik = self.gaussian_conditional(y, scales, means=means)
        if rate_round:
            y_lik = self._y_likelihood(ste_round(y) if means is None else ste_round(y - means) + means, scales, means)
        if ste or not self.training:
            y_hat = ste_round(y if means is None else y - means)
            y_hat = y_hat if means is None else y_hat + means
        else:
            y_hat = y_noisy
        x_hat = self.g_s(y_hat * ig)
        return {"x_hat": x_hat, "y_likelihoods": y_lik, "z_likelihoods": z_lik}

    # ---- coding -------------------------------------------------------------------------

    def prepare_for_coding(self) -> None:
        """Build the float64 copy of the hyper-synthesis used to derive coding parameters.

        The parameters that select probability tables must agree bit for bit between encoder
        and decoder; float64 keeps batch- and thread-dependent round-off far from the decision
        boundaries (a remaining disagreement is caught by the latent digest).
        """
        # not registered as a submodule: it is derived from h_s and must not enter the state dict
        object.__setattr__(self, "_h_s64", copy.deepcopy(self.h_s).double().eval())
        self._z_stage = FactorizedStage(self.entropy_bottleneck)
        self._y_stage = GaussianStage(self.gaussian_conditional)

    def export_tables(self) -> None:
        """Compute the integer coding tables once; they are stored with the weights.

        The hyper-latent quantiles are located by bisection first (compressai's exact search), so
        tables do not depend on how far the auxiliary loss has converged.
        """
        with torch.no_grad():
            self.entropy_bottleneck.update(force=True, update_quantiles=True)
        self.gaussian_conditional.update_scale_table(default_scale_table(), force=True)

    # The float64 parameter network runs in bands of ``band`` z rows on latents taller than
    # ``band_above`` z rows (images above 2048 pixels): float64 convolutions run through im2col
    # buffers of about 9 x 192 x 8 bytes per y position (~230 MB for a 2048^2 image at once).
    band: int = 8
    band_above: int = 32

    def _y_params(self, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        """Table indices (int32) and integer means (int64) of ``y`` (B, M, 4h, 4w) from ``z_hat``
        (B, N, h, w). Tall latents run in bands of ``band`` z rows, each extended by 2 rows
        (the hyper-synthesis reaches 1 + 1/2 + 1/4 z rows: deconv, deconv, conv3x3), so the
        float64 network never holds the whole latent."""
        zh = z_hat.shape[-2]
        if zh <= self.band_above:
            return self._y_stage.parameters(*self._entropy_params(z_hat.double(), self._h_s64))
        B, _, _, zw = z_hat.shape
        M = self.gain.log_gain.shape[1]
        indexes = torch.empty((B, M, 4 * zh, 4 * zw), dtype=torch.int32, device=z_hat.device)
        means_q = torch.empty(indexes.shape, dtype=torch.int64, device=z_hat.device)
        for r0 in range(0, zh, self.band):
            release_free_memory()
            r1 = min(r0 + self.band, zh)
            a, b = window((r0, r1), 2, zh)
            idx, mq = self._y_stage.parameters(*self._entropy_params(z_hat[..., a:b, :].double(), self._h_s64))
            indexes[..., 4 * r0 : 4 * r1, :] = idx[..., 4 * (r0 - a) : 4 * (r1 - a), :]
            means_q[..., 4 * r0 : 4 * r1, :] = mq[..., 4 * (r0 - a) : 4 * (r1 - a), :]
        return indexes, means_q

    def _hyper64(self, z_hat: Tensor) -> Tensor:
        """The float64 hyper-synthesis output (B, 2M, 4h, 4w) of ``z_hat`` (B, N, h, w), by the
        same bands of z rows as :meth:`_y_params` on tall latents."""
        zh = z_hat.shape[-2]
        if zh <= self.band_above:
            return self._h_s64(z_hat.double())
        out = None
        for r0 in range(0, zh, self.band):
            release_free_memory()
            r1 = min(r0 + self.band, zh)
            a, b = window((r0, r1), 2, zh)
            part = self._h_s64(z_hat[..., a:b, :].double())
            if out is None:
                out = part.new_empty((*part.shape[:2], 4 * zh, part.shape[-1]))
            out[..., 4 * r0 : 4 * r1, :] = part[..., 4 * (r0 - a) : 4 * (r1 - a), :]
        return out

    def _y_values(self, y: Tensor, means_q: Tensor) -> tuple[Tensor, Tensor]:
        """Symbols (int32) and dequantized ``y_hat`` (float32) of ``y``, by bands of rows
        (elementwise, so the same values as in one call, without float64 copies of the whole latent)."""
        y_sym = torch.empty(y.shape, dtype=torch.int32, device=y.device)
        y_hat = torch.empty(y.shape, dtype=torch.float32, device=y.device)
        for r0 in range(0, y.shape[-2], 4 * self.band):
            rows = slice(r0, r0 + 4 * self.band)
            y_sym[..., rows, :] = self._y_stage.quantize(y[..., rows, :], means_q[..., rows, :])
            y_hat[..., rows, :] = self._y_stage.dequantize(y_sym[..., rows, :], means_q[..., rows, :])
        return y_sym, y_hat

    def _dequantize(self, y_sym: Tensor, means_q: Tensor) -> Tensor:
        """Dequantized ``y_hat`` (float32, NCHW-contiguous) from decoded symbols, by bands of rows."""
        y_hat = torch.empty(y_sym.shape, dtype=torch.float32, device=y_sym.device)
        for r0 in range(0, y_sym.shape[-2], 4 * self.band):
            rows = slice(r0, r0 + 4 * self.band)
            y_hat[..., rows, :] = self._y_stage.dequantize(y_sym[..., rows, :], means_q[..., rows, :])
        return y_hat

    @torch.no_grad()
    def analyze(self, x: Tensor, quality: float) -> tuple[Tensor, Tensor]:
        """The latents the coder quantizes: ``y`` (B, M, H/16, W/16) with the gain applied and the
        hyper-latent ``z`` (B, N, H/64, W/64); one quantization bin is 1 wide in both."""
        g, _ = self.gain(torch.full((x.shape[0],), float(quality), device=x.device))
        y = self.transform_image(x) * g
        return y, self.h_a(y if self.mean else y.abs())

    def relaxed(self, y: Tensor, z: Tensor, quality: float, rounder: Rounder) -> tuple[Tensor, list[Tensor]]:
        """Differentiable stand-in for :meth:`compress_latents` (encoder-side refinement): the
        synthesis output (B, 3, H, W) and the likelihoods of ``y`` and ``z``, each latent rounded
        by ``rounder`` around the centre the coder rounds it to (z: its median, y: its mean)."""
        _, ig = self.gain(torch.full((y.shape[0],), float(quality), device=y.device))
        z_hat, z_lik = self._relaxed_z(z, rounder)
        scales, means = self._entropy_params(z_hat, self.h_s)
        y_hat = rounder(y) if means is None else rounder(y - means) + means
        return self.g_s(y_hat * ig), [self._y_likelihood(y_hat, scales, means), z_lik]

    def _relaxed_z(self, z: Tensor, rounder: Rounder) -> tuple[Tensor, Tensor]:
        """Rounded hyper-latent and its likelihood under the factorized prior (training formula)."""
        eb = self.entropy_bottleneck
        medians = eb._get_medians().reshape(1, -1, 1, 1)
        z_hat = rounder(z - medians) + medians
        C = z.shape[1]
        lik, _, _ = eb._likelihood(z_hat.transpose(0, 1).reshape(C, 1, -1))
        lik = eb.likelihood_lower_bound(lik).reshape(C, z.shape[0], *z.shape[2:]).transpose(0, 1)
        return z_hat, lik

    def _y_likelihood(self, y_hat: Tensor, scales: Tensor, means: Tensor | None) -> Tensor:
        gc = self.gaussian_conditional
        return gc.likelihood_lower_bound(gc._likelihood(y_hat, scales, means))

    def compress(self, x: Tensor, quality: float, reconstruct: bool = True) -> list[Coded]:
        """Encode a batch (B, 3, H, W) in [0, 1], H and W multiples of ``downsampling``; with
        ``reconstruct`` also run the synthesis to return what the decoder will output."""
        return self.compress_latents(*self.analyze(x, quality), quality, reconstruct)

    @torch.no_grad()
    def compress_latents(self, y: Tensor, z: Tensor, quality: float, reconstruct: bool = True) -> list[Coded]:
        """Code given latents (as :meth:`analyze` returns them, or refined); same output as
        :meth:`compress` for the image they came from."""
        z_sym = self._z_stage.quantize(z)
        z_hat = self._z_stage.dequantize(z_sym)
        indexes, means_q = self._y_params(z_hat)
        y_sym, y_hat = self._y_values(y, means_q)
        x_hat = self.synthesize(y_hat, quality) if reconstruct else None
        z_np, y_np, idx_np = (t.cpu().numpy() for t in (z_sym, y_sym, indexes))
        out = []
        for i in range(y.shape[0]):
            sections = [self._z_stage.encode(z_np[i]), self._y_stage.encode(y_np[i], idx_np[i])]
            rec = x_hat[i : i + 1] if x_hat is not None else None
            out.append(Coded(sections, self.latent_digest([z_np[i], y_np[i]]), rec, y_hat[i : i + 1]))
        return out

    @torch.no_grad()
    def decode_latent(self, sections: list[bytes], height: int, width: int, quality: float, device: str = "cpu") -> tuple[Tensor, bytes]:
        self.check_sections(sections, 2)
        zh, zw = height // self.downsampling, width // self.downsampling
        z_sym = self._z_stage.decode(sections[0], (zh, zw))
        z_hat = self._z_stage.dequantize(torch.from_numpy(z_sym).to(device)[None])
        indexes, means_q = self._y_params(z_hat)
        y_sym = self._y_stage.decode(sections[1], indexes[0].cpu().numpy())
        y_hat = self._dequantize(torch.from_numpy(y_sym).to(device)[None], means_q)
        return y_hat, self.latent_digest([z_sym, y_sym])
