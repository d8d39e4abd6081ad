"""STEM with channel groups: a P-frame model that codes like the image model plus a temporal prior.

The P-frame latent ``y_t`` is coded in the image model's own passes (uneven channel groups with a
checkerboard inside each, ELIC-style; :mod:`.context`): hyper-latent ``z_t``, then per group its
anchors and non-anchors. Every pass's scales and means are the image model's (hyper-synthesis +
channel and spatial context + correction), except that each correction net also sees temporal
features of ``ŷ(t-1)``, the previous frame's exactly decoded latent, and the hyper-analysis sees
``(y_t, ŷ(t-1))``. Both new inputs start with zero weights (:meth:`init_from_image`), so before
training a P-frame costs exactly what the image model's I-frame costs; training (rate only) can
then only use the reference to save bits. Parameters are computed in float64 from integers only,
so a P-frame decodes to the same latent on every machine.

With ``copy_hidden > 0`` (``stem-elic-copy``) each group also has a *copy gate*: a small net on
[scales, means, ``ŷ_k(t-1) - means``, temporal features] whose outputs ``a`` and ``b`` move the
means toward the group's own co-located channels of the reference and shift the scales,
``means + a (ŷ_k(t-1) - means)`` and ``scales + b``. Copying an exact reference is then one
gate value, not a mean learned through three convolutions (docs/benchmarks.md, "A still scene").
Its last layer starts at zero, so an untrained gate changes nothing.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import Tensor, nn

from .._compressai import EntropyBottleneck, GaussianConditional, conv, deconv
from ..entropy import FactorizedStage, GaussianStage
from ..entropy.checkerboard import anchor_mask
from ..errors import CorruptFileError, ModelError
from .context import ContextNets
from .stem import TemporalEntropyModel, copy_hyperprior, zero_extended
from .transforms import ste_round


class GroupedParameterNets(nn.Module):
    """Everything the decoder evaluates: hyper-synthesis, temporal prior and the channel-group
    context nets, whose corrections take the temporal features as their last input."""

    def __init__(self, M: int, N: int, groups: tuple[int, ...], hidden: int, temporal: int, copy_hidden: int = 0) -> None:
        super().__init__()
        act = lambda: nn.LeakyReLU(inplace=True)  # noqa: E731
        mid = M * 3 // 2
        self.h_s = nn.Sequential(deconv(N, M), act(), deconv(M, mid), act(), conv(mid, 2 * M, 3, 1))
        self.prior = nn.Sequential(conv(M, temporal, 3, 1), act(), conv(temporal, temporal, 3, 1), act(),
                                   conv(temporal, temporal, 3, 1))
        self.context = ContextNets(M, groups, True, hidden, extra=temporal)
        if copy_hidden:
            self.gates = nn.ModuleList(copy_gate(3 * c + temporal, copy_hidden, 2 * c) for c in groups)

    def params(self, k: int, hyper: Tensor, chan: Tensor | None, anchors: Tensor | None, prior: Tensor,
               y_prev: Tensor) -> tuple[Tensor, Tensor]:
        """Scales and means (B, c, h, w) of group ``k``: the image model's parameters with the
        temporal features ``prior`` as the corrections' extra input, then the copy gate if any."""
        scales, means = self.context.params(k, hyper, chan, anchors, prior)
        if not hasattr(self, "gates"):
            return scales, means
        c0, c1 = self.context.bounds[k]
        ref = y_prev[:, c0:c1] - means
        a, b = self.gates[k](torch.cat([scales, means, ref, prior], 1)).chunk(2, 1)
        return scales + b, means + a * ref


def copy_gate(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    """Three 1x1 convolutions, the last one zero: an untrained gate outputs exactly zero."""
    net = nn.Sequential(conv(n_in, hidden, 1, 1), nn.LeakyReLU(inplace=True), conv(hidden, hidden, 1, 1),
                        nn.LeakyReLU(inplace=True), conv(hidden, n_out, 1, 1))
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


class GroupedTemporalEntropyModel(nn.Module):
    """P-frame entropy model for latents (B, M, h, w) at 1/16 of the frame, h and w multiples of 4;
    ``groups``, ``hidden`` and ``N`` must be the image model's (it starts as that model);
    ``copy_hidden`` > 0 adds the copy gates."""

    downsampling = 4  # of the hyper-latent relative to the latent

    def __init__(self, M: int = 128, N: int = 96, groups: tuple[int, ...] | list[int] = (16, 16, 32, 64),
                 hidden: int = 96, temporal: int = 96, copy_hidden: int = 0) -> None:
        super().__init__()
        groups = tuple(int(c) for c in groups)
        if sum(groups) != M:
            raise ValueError(f"channel groups {groups} must add up to M={M}")
        act = lambda: nn.LeakyReLU(inplace=True)  # noqa: E731
        self.h_a = nn.Sequential(conv(2 * M, N, 3, 1), act(), conv(N, N), act(), conv(N, N))
        self.nets = GroupedParameterNets(M, N, groups, hidden, temporal, copy_hidden)
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional(None)
        self.M, self.groups = M, groups
        self.bounds = self.nets.context.bounds

    @property
    def sections(self) -> int:
        """Sections of a P-frame: the hyper-latent and two per channel group."""
        return 1 + 2 * len(self.groups)

    @torch.no_grad()
    def init_from_image(self, image: nn.Module) -> None:
        """Start as the image model's entropy model: its hyper-analysis (weights for ``ŷ(t-1)``
        zero), hyper-synthesis, factorized prior and context nets (weights of the temporal
        features zero). The temporal prior keeps its random start; its output is unused until
        the corrections learn weights for it."""
        if getattr(image, "groups", None) != self.groups or not getattr(image, "checkerboard", False):
            raise ModelError(f"{type(image).__name__} has no checkerboard channel groups {self.groups} to start from")
        copy_hyperprior(self, image)
        ctx = dict(image.context.state_dict())
        for k, net in enumerate(self.nets.context.correction):
            ctx[f"correction.{k}.0.weight"] = zero_extended(ctx[f"correction.{k}.0.weight"], net[0].weight)
        self.nets.context.load_state_dict(ctx)

    def forward(self, y: Tensor, y_prev: Tensor) -> dict[str, Tensor]:
        """Training pass on latents (B, M, h, w): likelihoods of the coded symbols of ``y``
        (rounded around the means, straight-through) and (noisy) of ``z``, ``y_hat`` (the
        next reference) and the ``means``. Each group's context sees the rounded values the decoder will have."""
        z_hat, z_lik = self.entropy_bottleneck(self.h_a(torch.cat([y, y_prev], 1)))
        hyper, prior = self.nets.h_s(z_hat), self.nets.prior(y_prev)
        ctx, gc = self.nets.context, self.gaussian_conditional
        anchor = anchor_mask(*y.shape[-2:], device=y.device)
        rounded, liks, all_means = [], [], []
        for k, (c0, c1) in enumerate(self.bounds):
            yk = y[:, c0:c1]
            chan = ctx.channel[k](torch.cat(rounded, 1)) if k else None
            s1, m1 = self.nets.params(k, hyper, chan, None, prior, y_prev)
            s2, m2 = self.nets.params(k, hyper, chan, (ste_round(yk - m1) + m1) * anchor, prior, y_prev)
            scales, means = torch.where(anchor, s1, s2), torch.where(anchor, m1, m2)
            rounded.append(ste_round(yk - means) + means)
            all_means.append(means)
            liks.append(gc.likelihood_lower_bound(gc._likelihood(rounded[-1], scales, means)))
        return {"y_likelihoods": torch.cat(liks, 1), "z_likelihoods": z_lik, "y_hat": torch.cat(rounded, 1),
                "means": torch.cat(all_means, 1)}

    # ---- coding -------------------------------------------------------------------------

    export_tables = TemporalEntropyModel.export_tables  # the same tables: factorized z, Gaussian y

    def prepare_for_coding(self) -> None:
        """Float64 copy of the parameter networks: coding parameters must agree bit for bit."""
        object.__setattr__(self, "_nets64", copy.deepcopy(self.nets).double().eval())
        self._z_stage = FactorizedStage(self.entropy_bottleneck)
        self._y_stage = GaussianStage(self.gaussian_conditional)

    def _passes(self, y_prev: Tensor, z_hat: Tensor, y_hat: Tensor):
        """Yield (group bounds, positions, table indices, integer means) pass by pass; the caller
        writes each pass's decoded values into ``y_hat`` (float64, zeros where not yet decoded)
        before asking for the next pass."""
        nets = self._nets64
        hyper, prior = nets.h_s(z_hat.double()), nets.prior(y_prev)
        anchor = anchor_mask(*y_hat.shape[-2:], device=y_hat.device)
        for k, (c0, c1) in enumerate(self.bounds):
            chan = nets.context.channel[k](y_hat[:, :c0]) if k else None
            for pos, spatial in ((anchor, False), (~anchor, True)):
                scales, means = nets.params(k, hyper, chan, y_hat[:, c0:c1] if spatial else None, prior, y_prev)
                yield (c0, c1), pos, *self._y_stage.parameters(scales, means)

    @torch.no_grad()
    def compress(self, y: Tensor, y_prev: Tensor) -> tuple[list[bytes], list[np.ndarray], Tensor]:
        """Code one latent ``y`` (1, M, h, w) given the reference ``y_prev`` (float64): the
        sections, the symbols (for the latent digest) and ``ŷ`` (float64)."""
        z_sym = self._z_stage.quantize(self.h_a(torch.cat([y, y_prev.to(y.dtype)], 1)))
        z_np = z_sym[0].cpu().numpy()
        sections, symbols = [self._z_stage.encode(z_np)], [z_np]
        y_hat = torch.zeros(y.shape, dtype=torch.float64, device=y.device)
        for (c0, c1), pos, indexes, means_q in self._passes(y_prev, self._z_stage.dequantize(z_sym), y_hat):
            sym = self._y_stage.quantize(y[:, c0:c1], means_q)[..., pos]
            y_hat[:, c0:c1][..., pos] = self._y_stage.values(sym, means_q[..., pos])
            s_np = sym[0].cpu().numpy()
            sections.append(self._y_stage.encode(s_np, indexes[0][..., pos].cpu().numpy()))
            symbols.append(s_np)
        return sections, symbols, y_hat

    @torch.no_grad()
    def decompress(self, sections: list[bytes], y_prev: Tensor) -> tuple[Tensor, list[np.ndarray]]:
        """Inverse of :meth:`compress`: ``ŷ`` (1, M, h, w) float64 and the symbols."""
        if len(sections) != self.sections:
            raise CorruptFileError(f"a P-frame has {self.sections} sections, this one has {len(sections)}")
        _, M, h, w = y_prev.shape
        z_np = self._z_stage.decode(sections[0], (h // 4, w // 4))
        z_hat = self._z_stage.dequantize(torch.from_numpy(z_np).to(y_prev.device)[None])
        y_hat = torch.zeros((1, M, h, w), dtype=torch.float64, device=y_prev.device)
        symbols = [z_np]
        for payload, ((c0, c1), pos, indexes, means_q) in zip(sections[1:], self._passes(y_prev, z_hat, y_hat)):
            sym = self._y_stage.decode(payload, indexes[0][..., pos].cpu().numpy())
            symbols.append(sym)
            y_hat[:, c0:c1][..., pos] = self._y_stage.values(torch.from_numpy(sym).to(y_prev.device)[None], means_q[..., pos])
        return y_hat, symbols
