"""Spatiotemporal entropy model (STEM, arXiv 2104.06083) on a frozen image model's transforms.

Every frame goes through the image model's analysis and synthesis; no motion, no residuals.
An I-frame is coded by the image model's own stages. A P-frame's latent ``y_t`` is coded with a
Gaussian whose mean and scale come from

* a temporal prior network on ``ŷ(t-1)``, the previous frame's exactly decoded latent,
* a hyperprior whose analysis sees ``(y_t, ŷ(t-1))`` (hyper-latent ``z_t``, factorized prior),
* a checkerboard spatial context (anchors first, then the rest, two batched passes),

merged by a fusion network as a correction of the hyperprior's prediction. Sections of a
P-frame: ``z``, anchors, non-anchors. The reference is integers plus integer means, so a P-frame
decodes to the same latent on every machine (the parameters are computed in float64, as for the
image models); its pixels are exactly the image model's synthesis of that latent.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from .._compressai import EntropyBottleneck, GaussianConditional, CheckerboardMaskedConv2d, conv, deconv
from ..entropy import FactorizedStage, GaussianStage, default_scale_table
from ..entropy.checkerboard import CheckerboardStage, anchor_mask
from ..errors import CorruptFileError
from .base import ImageCodec
from .transforms import ste_round


def zero_extended(weight: Tensor, like: Tensor) -> Tensor:
    """A convolution ``weight`` inside zeros shaped ``like``: the extra input channels (last) get
    zero weights, so a layer that gains inputs computes what it computed before."""
    out = torch.zeros_like(like)
    out[:, : weight.shape[1]] = weight
    return out


@torch.no_grad()
def copy_hyperprior(video: nn.Module, image: nn.Module) -> None:
    """Copy the image model's hyper-analysis (the weights for ``ŷ(t-1)``, its last inputs, zero),
    hyper-synthesis and factorized prior into a P-frame model (same N and M)."""
    state = dict(image.h_a.state_dict())
    state["0.weight"] = zero_extended(state["0.weight"], video.h_a[0].weight)
    video.h_a.load_state_dict(state)
    video.nets.h_s.load_state_dict(image.h_s.state_dict())
    eb = {k: v for k, v in image.entropy_bottleneck.state_dict().items()
          if not k.startswith(("_quantized_cdf", "_offset", "_cdf_length"))}
    video.entropy_bottleneck.load_state_dict(eb, strict=False)


class ParameterNets(nn.Module):
    """Everything the decoder evaluates: hyper-synthesis, temporal prior, spatial context, fusion.

    Scales and means are the hyper-synthesis' prediction plus a correction from the fusion net,
    whose last layer starts at zero: initialised from the image model's hyperprior
    (:meth:`TemporalEntropyModel.init_from_image`), a P-frame starts out coded as an I-frame is.
    """

    def __init__(self, M: int, N: int, hidden: int) -> None:
        super().__init__()
        act = lambda: nn.LeakyReLU(inplace=True)  # noqa: E731
        mid = M * 3 // 2
        self.h_s = nn.Sequential(deconv(N, M), act(), deconv(M, mid), act(), conv(mid, 2 * M, 3, 1))
        self.prior = nn.Sequential(conv(M, hidden, 3, 1), act(), conv(hidden, hidden, 3, 1), act(), conv(hidden, hidden, 3, 1))
        self.spatial = CheckerboardMaskedConv2d(M, hidden, kernel_size=5, padding=2)
        self.fusion = nn.Sequential(
            conv(3 * M + 2 * hidden, 2 * hidden, 1, 1), act(), conv(2 * hidden, 2 * hidden, 1, 1), act(),
            conv(2 * hidden, 2 * M, 1, 1),
        )
        nn.init.zeros_(self.fusion[-1].weight)
        nn.init.zeros_(self.fusion[-1].bias)

    def features(self, y_prev: Tensor, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        """Temporal features of ``ŷ(t-1)`` (B, M, h, w) and the hyper prediction from ``ẑ`` (B, N, h/4, w/4)."""
        return self.prior(y_prev), self.h_s(z_hat)

    def forward(self, prior: Tensor, hyper: Tensor, anchors: Tensor | None, y_prev: Tensor) -> tuple[Tensor, Tensor]:
        """Scales and means (B, M, h, w); ``anchors``: decoded anchors (zeros elsewhere) or None."""
        spatial = self.spatial(anchors) if anchors is not None else prior.new_zeros(prior.shape)
        out = hyper + self.fusion(torch.cat([hyper, prior, spatial, y_prev], 1))
        scales, means = out.chunk(2, 1)
        return scales, means


class TemporalEntropyModel(nn.Module):
    """P-frame entropy model for latents with ``M`` channels at 1/16 of the frame size."""

    downsampling = 4  # of the hyper-latent relative to the latent

    def __init__(self, M: int = 128, N: int = 96, hidden: int = 96) -> None:
        super().__init__()
        act = lambda: nn.LeakyReLU(inplace=True)  # noqa: E731
        self.h_a = nn.Sequential(conv(2 * M, N, 3, 1), act(), conv(N, N), act(), conv(N, N))
        self.nets = ParameterNets(M, N, hidden)
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional(None)
        self.M = M

    @torch.no_grad()
    def init_from_image(self, image: nn.Module) -> None:
        """Start from the image model's hyperprior (same N and M): hyper-analysis weights for
        ``y`` copied (those for ``ŷ(t-1)`` zero), hyper-synthesis and factorized prior copied."""
        copy_hyperprior(self, image)

    def forward(self, y: Tensor, y_prev: Tensor) -> dict[str, Tensor]:
        """Training pass on latents (B, M, h, w), h and w multiples of 4: likelihoods of the coded
        symbols of ``y`` and (noisy) of ``z``, ``y_hat`` rounded around the means (the next reference)
        and the ``means``."""
        z_hat, z_lik = self.entropy_bottleneck(self.h_a(torch.cat([y, y_prev], 1)))
        prior, hyper = self.nets.features(y_prev, z_hat)
        anchor = anchor_mask(*y.shape[-2:], device=y.device)
        s1, m1 = self.nets(prior, hyper, None, y_prev)
        anchors = (ste_round(y - m1) + m1) * anchor
        s2, m2 = self.nets(prior, hyper, anchors, y_prev)
        scales, means = torch.where(anchor, s1, s2), torch.where(anchor, m1, m2)
        # The rate of the symbols the coder will write (rounded around the means; straight-through
        # gradient), not the additive-noise proxy: the transforms are frozen, and a mean predicted
        # closer than one quantization step (a still scene) must be seen to cost almost nothing.
        y_hat = ste_round(y - means) + means
        gc = self.gaussian_conditional
        y_lik = gc.likelihood_lower_bound(gc._likelihood(y_hat, scales, means))
        return {"y_likelihoods": y_lik, "z_likelihoods": z_lik, "y_hat": y_hat, "means": means}

    # ---- coding -------------------------------------------------------------------------

    def export_tables(self) -> None:
        """Integer coding tables, computed once and stored with the weights."""
        with torch.no_grad():
            self.entropy_bottleneck.update(force=True, update_quantiles=True)
        self.gaussian_conditional.update_scale_table(default_scale_table(), force=True)

    def prepare_for_coding(self) -> None:
        """Float64 copy of the parameter networks: coding parameters must agree bit for bit."""
        object.__setattr__(self, "_nets64", copy.deepcopy(self.nets).double().eval())
        self._z_stage = FactorizedStage(self.entropy_bottleneck)
        self._y_stage = CheckerboardStage(GaussianStage(self.gaussian_conditional))

    def _param_fn(self, y_prev: Tensor, z_hat: Tensor):
        prior, hyper = self._nets64.features(y_prev, z_hat.double())
        return lambda anchors: self._nets64(prior, hyper, anchors, y_prev)

    @torch.no_grad()
    def compress(self, y: Tensor, y_prev: Tensor) -> tuple[list[bytes], list[np.ndarray], Tensor]:
        """Code one latent ``y`` (1, M, h, w) given the reference ``y_prev`` (float64): the three
        sections, the symbols (for the latent digest) and ``ŷ`` (float64)."""
        z_sym = self._z_stage.quantize(self.h_a(torch.cat([y, y_prev.to(y.dtype)], 1)))
        z_np = z_sym[0].cpu().numpy()
        payloads, symbols, y_hat = self._y_stage.encode(y, self._param_fn(y_prev, self._z_stage.dequantize(z_sym)))
        return [self._z_stage.encode(z_np), *payloads], [z_np, *symbols], y_hat

    @torch.no_grad()
    def decompress(self, sections: list[bytes], y_prev: Tensor) -> tuple[Tensor, list[np.ndarray]]:
        """Inverse of :meth:`compress`: ``ŷ`` (1, M, h, w) float64 and the symbols."""
        if len(sections) != 3:
            raise CorruptFileError(f"a P-frame has 3 sections, this one has {len(sections)}")
        _, M, h, w = y_prev.shape
        z_np = self._z_stage.decode(sections[0], (h // 4, w // 4))
        z_hat = self._z_stage.dequantize(torch.from_numpy(z_np).to(y_prev.device)[None])
        y_hat, symbols = self._y_stage.decode(sections[1:], (M, h, w), self._param_fn(y_prev, z_hat), str(y_prev.device))
        return y_hat, [z_np, *symbols]


@dataclass
class FrameCode:
    """One coded frame: its sections, latent digest and ``ŷ`` (1, M, h, w) float64."""

    intra: bool
    sections: list[bytes]
    latent_digest: bytes
    y_hat: Tensor


class StemCodec:
    """Frames (padded to multiples of 64) through the image model; P-frames through ``temporal``."""

    def __init__(self, image: ImageCodec, temporal: TemporalEntropyModel) -> None:
        self.image, self.temporal = image, temporal

    @torch.no_grad()
    def analysis(self, x: Tensor, quality: float) -> Tensor:
        """Latents ``y`` (B, M, H/16, W/16), gain applied, of frames (B, 3, H, W) in [0, 1]."""
        g, _ = self.image.gain(torch.full((x.shape[0],), float(quality), device=x.device))
        return self.image.g_a(x) * g

    @torch.no_grad()
    def encode(self, y: Tensor, y_prev: Tensor | None) -> FrameCode:
        """Code one latent (1, M, h, w): intra with the image model's stages if ``y_prev`` is None."""
        if y_prev is None:  # the image model's own coding passes (its quality only matters for pixels)
            coded = self.image.compress_latents(y, self.image.h_a(y), 0.0, reconstruct=False)[0]
            return FrameCode(True, coded.sections, coded.latent_digest, coded.latent.double())  # via float32, as decode_latent gives it
        sections, symbols, y_hat = self.temporal.compress(y, y_prev)
        return FrameCode(False, sections, ImageCodec.latent_digest(symbols), y_hat)

    @torch.no_grad()
    def decode(self, sections: list[bytes], y_prev: Tensor | None, height: int, width: int, quality: float, device: str = "cpu") -> FrameCode:
        """Decode one frame's latent; ``height``/``width`` are the padded frame size."""
        if y_prev is None:
            y_hat, digest = self.image.decode_latent(sections, height, width, quality, device)
            return FrameCode(True, sections, digest, y_hat.double())
        y_hat, symbols = self.temporal.decompress(sections, y_prev)
        return FrameCode(False, sections, ImageCodec.latent_digest(symbols), y_hat)

    def reconstruct(self, y_hat: Tensor, quality: float, height: int, width: int) -> np.ndarray:
        """The frame (height, width, 3) uint8: exactly the image model's output for this latent."""
        return self.image.reconstruct(y_hat.float().contiguous(), quality, height, width)
