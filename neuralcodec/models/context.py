"""Context models on the mean-scale hyperprior, decoded in a fixed number of batched passes.

* **Checkerboard** (He et al. 2021): the latent's *anchors* (positions whose row + column is
  even) are coded first from the hyperprior alone, then the *non-anchors* from the hyperprior and
  a masked 5x5 convolution over the decoded anchors.
* **Channel groups** (Minnen & Singh 2020; uneven groups with a checkerboard inside each, as in
  ELIC, He et al. 2022): group ``k`` is also conditioned on all previously decoded groups.

Coding runs ``len(groups) * 2`` passes (1 + that many sections, hyper-latent first), whatever
the image size; each pass is one float64 parameter-network call on the whole batch and one
vectorized coder call per image. The parameters of group ``k`` are the mean-scale hyperprior's
prediction for its channels plus a learned correction whose last layer starts at zero, so a model
warm-started from ``mean-scale-hyperprior`` weights starts out as exactly that model.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from .._compressai import CheckerboardMaskedConv2d, conv
from ..entropy.checkerboard import anchor_mask
from .base import Coded
from .._malloc import release_free_memory
from .hyperprior import Hyperprior
from .tiling import window
from .transforms import Rounder, ste_round


class ContextNets(nn.Module):
    """Per-group channel context, checkerboard spatial context and parameter correction.

    ``extra`` more input channels of every correction net (features the caller adds, such as a
    video model's temporal prior) come last in its input."""

    def __init__(self, M: int, groups: tuple[int, ...], checkerboard: bool, hidden: int, extra: int = 0) -> None:
        super().__init__()
        self.channel = nn.ModuleList()
        self.spatial = nn.ModuleList()
        self.correction = nn.ModuleList()
        self.checkerboard = checkerboard
        self.bounds: list[tuple[int, int]] = []
        done = 0
        for c in groups:
            self.channel.append(
                nn.Sequential(
                    conv(done, hidden, kernel_size=3, stride=1), nn.LeakyReLU(inplace=True),
                    conv(hidden, 2 * c, kernel_size=3, stride=1),
                ) if done else nn.Identity()
            )
            self.spatial.append(
                CheckerboardMaskedConv2d(c, 2 * c, kernel_size=5, padding=2, bias=False) if checkerboard else nn.Identity()
            )
            n_in = 2 * M + (2 * c if done else 0) + (2 * c if checkerboard else 0) + extra
            net = nn.Sequential(
                conv(n_in, hidden, kernel_size=1, stride=1), nn.LeakyReLU(inplace=True),
                conv(hidden, hidden, kernel_size=1, stride=1), nn.LeakyReLU(inplace=True),
                conv(hidden, 2 * c, kernel_size=1, stride=1),
            )
            nn.init.zeros_(net[-1].weight)
            nn.init.zeros_(net[-1].bias)
            self.correction.append(net)
            self.bounds.append((done, done + c))
            done += c

    def params(self, k: int, hyper: Tensor, chan: Tensor | None, anchors: Tensor | None,
               extra: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Scales and means (B, c, h, w) of group ``k``: the hyperprior's prediction ``hyper``
        (B, 2M, h, w) plus a correction. ``chan``: the channel context of the groups before it;
        ``anchors``: the group's decoded anchors (zeros elsewhere) for the non-anchor pass, else
        None; ``extra``: the caller's extra features."""
        c0, c1 = self.bounds[k]
        M = hyper.shape[1] // 2
        base = torch.cat([hyper[:, c0:c1], hyper[:, M + c0 : M + c1]], 1)
        feats = [hyper] + ([chan] if chan is not None else [])
        if self.checkerboard:
            feats.append(self.spatial[k](anchors) if anchors is not None else base.new_zeros(base.shape))
        if extra is not None:
            feats.append(extra)
        scales, means = (base + self.correction[k](torch.cat(feats, 1))).chunk(2, 1)
        return scales, means


class ContextHyperprior(Hyperprior):
    """Mean-scale hyperprior with checkerboard and/or channel-group context."""

    def __init__(
        self, N: int = 128, M: int = 192, levels: int = 6, groups: tuple[int, ...] | list[int] = (192,),
        checkerboard: bool = True, hidden: int = 192,
    ) -> None:
        super().__init__(N, M, levels, mean=True)
        groups = tuple(int(c) for c in groups)
        if sum(groups) != M or min(groups) < 1:
            raise ValueError(f"channel groups {groups} must be positive and add up to M={M}")
        self.groups, self.checkerboard = groups, bool(checkerboard)
        self.context = ContextNets(M, groups, self.checkerboard, hidden)
        self.bounds = self.context.bounds

    @property
    def passes(self) -> int:
        return len(self.groups) * (2 if self.checkerboard else 1)

    def forward(self, x: Tensor, quality: Tensor, ste: bool = True, rate_round: bool = False) -> dict[str, Tensor]:
        """Training pass; the context sees rounded latents exactly as the decoder will. The rate is
        the likelihood of noisy latents, or (``rate_round=True``) of the straight-through rounded ones."""
        g, ig = self.gain(quality)
        y = self.g_a(x) * g
        z = self.h_a(y)
        z_hat, z_lik = self._relaxed_z(z, ste_round) if rate_round else self.entropy_bottleneck(z)
        hyper = self.h_s(z_hat)
        anchor = anchor_mask(*y.shape[-2:], device=y.device)
        rounded, noisy, liks = [], [], []
        for k, (c0, c1) in enumerate(self.bounds):
            yk = y[:, c0:c1]
            chan = self.context.channel[k](torch.cat(rounded, 1)) if k else None
            scales, means = self.context.params(k, hyper, chan, None)
            if self.checkerboard:
                anchors = (ste_round(yk - means) + means) * anchor
                s2, m2 = self.context.params(k, hyper, chan, anchors)
                scales, means = torch.where(anchor, scales, s2), torch.where(anchor, means, m2)
            yk_noisy, lik = self.gaussian_conditional(yk, scales, means=means)
            rounded.append(ste_round(yk - means) + means)
            if rate_round:
                lik = self._y_likelihood(rounded[-1], scales, means)
            noisy.append(yk_noisy)
            liks.append(lik)
        y_hat = torch.cat(rounded if ste or not self.training else noisy, 1)
        return {"x_hat": self.g_s(y_hat * ig), "y_likelihoods": torch.cat(liks, 1), "z_likelihoods": z_lik}

    # ---- coding -------------------------------------------------------------------------

    def prepare_for_coding(self) -> None:
        super().prepare_for_coding()
        object.__setattr__(self, "_context64", copy.deepcopy(self.context).double().eval())

    def _passes(self, hyper: Tensor, y_hat: Tensor) -> Iterator[tuple[int, Tensor, Tensor, Tensor]]:
        """Yield (group, positions, table indices, integer means) pass by pass. The caller writes
        each pass's decoded values into ``y_hat`` (float64, zeros where not yet decoded) before
        asking for the next pass, whose parameters depend on them.

        On latents taller than ``4 * band_above`` rows (images above 2048 pixels) each pass runs
        its float64 networks by bands of ``4 * band`` rows, each extended by the 2 rows the
        context reaches (two 3x3 convolutions, or the 5x5 checkerboard convolution), so no
        network activation spans the whole latent."""
        nets = self._context64
        B, _, H, W = y_hat.shape
        anchor = anchor_mask(H, W, device=y_hat.device)
        parts = [(anchor, False), (~anchor, True)] if self.checkerboard else [(torch.ones_like(anchor), False)]
        step = H if H <= 4 * self.band_above else 4 * self.band  # one band on small latents
        for k, (c0, c1) in enumerate(self.bounds):
            chan = nets.channel[k](y_hat[:, :c0]) if k and step == H else None  # once per group
            for pos, spatial in parts:
                indexes = torch.empty((B, c1 - c0, H, W), dtype=torch.int32, device=y_hat.device)
                means_q = torch.empty(indexes.shape, dtype=torch.int64, device=y_hat.device)
                for r0 in range(0, H, step):
                    if step < H:
                        release_free_memory()
                    r1 = min(r0 + step, H)
                    a, b = window((r0, r1), 2, H)
                    band_chan = chan if step == H or not k else nets.channel[k](y_hat[:, :c0, a:b])
                    scales, means = nets.params(k, hyper[..., a:b, :], band_chan,
                                                 y_hat[:, c0:c1, a:b] if spatial else None)
                    idx, mq = self._y_stage.parameters(scales, means)
                    indexes[..., r0:r1, :] = idx[..., r0 - a : r1 - a, :]
                    means_q[..., r0:r1, :] = mq[..., r0 - a : r1 - a, :]
                yield k, pos, indexes, means_q

    def relaxed(self, y: Tensor, z: Tensor, quality: float, rounder: Rounder) -> tuple[Tensor, list[Tensor]]:
        """Like :meth:`forward` on given latents with ``rounder`` for rounding: the context of each
        pass sees the same rounded values that enter the synthesis and the likelihoods."""
        _, ig = self.gain(torch.full((y.shape[0],), float(quality), device=y.device))
        z_hat, z_lik = self._relaxed_z(z, rounder)
        hyper = self.h_s(z_hat)
        anchor = anchor_mask(*y.shape[-2:], device=y.device)
        rounded, liks = [], []
        for k, (c0, c1) in enumerate(self.bounds):
            yk = y[:, c0:c1]
            chan = self.context.channel[k](torch.cat(rounded, 1)) if k else None
            scales, means = self.context.params(k, hyper, chan, None)
            yk_hat = rounder(yk - means) + means
            if self.checkerboard:
                s2, m2 = self.context.params(k, hyper, chan, yk_hat * anchor)
                scales, means = torch.where(anchor, scales, s2), torch.where(anchor, means, m2)
                yk_hat = torch.where(anchor, yk_hat, rounder(yk - m2) + m2)
            rounded.append(yk_hat)
            liks.append(self._y_likelihood(yk_hat, scales, means))
        return self.g_s(torch.cat(rounded, 1) * ig), [torch.cat(liks, 1), z_lik]

    @torch.no_grad()
    def compress_latents(self, y: Tensor, z: Tensor, quality: float, reconstruct: bool = True) -> list[Coded]:
        B = y.shape[0]
        z_sym = self._z_stage.quantize(z)
        hyper = self._hyper64(self._z_stage.dequantize(z_sym))
        z_np = z_sym.cpu().numpy()
        sections = [[self._z_stage.encode(z_np[i])] for i in range(B)]
        symbols = [[z_np[i]] for i in range(B)]
        y_hat = torch.zeros(y.shape, dtype=torch.float64, device=y.device)
        for k, pos, indexes, means_q in self._passes(hyper, y_hat):
            c0, c1 = self.bounds[k]
            sym = self._y_stage.quantize(y[:, c0:c1], means_q)[..., pos]
            mq = means_q[..., pos]
            y_hat[:, c0:c1][..., pos] = self._y_stage.values(sym, mq)
            s_np, i_np = sym.cpu().numpy(), indexes[..., pos].cpu().numpy()
            for i in range(B):
                sections[i].append(self._y_stage.encode(s_np[i], i_np[i]))
                symbols[i].append(s_np[i])
        y_hat = y_hat.float().contiguous()
        x_hat = self.synthesize(y_hat, quality) if reconstruct else None
        return [
            Coded(sections[i], self.latent_digest(symbols[i]), x_hat[i : i + 1] if x_hat is not None else None,
                  y_hat[i : i + 1])
            for i in range(B)
        ]

    @torch.no_grad()
    def decode_latent(self, sections: list[bytes], height: int, width: int, quality: float, device: str = "cpu") -> tuple[Tensor, bytes]:
        self.check_sections(sections, 1 + self.passes)
        zh, zw = height // self.downsampling, width // self.downsampling
        z_sym = self._z_stage.decode(sections[0], (zh, zw))
        hyper = self._hyper64(self._z_stage.dequantize(torch.from_numpy(z_sym).to(device)[None]))
        y_hat = torch.zeros((1, sum(self.groups), zh * 4, zw * 4), dtype=torch.float64, device=device)
        symbols = [z_sym]
        for n, (k, pos, indexes, means_q) in enumerate(self._passes(hyper, y_hat), start=1):
            c0, c1 = self.bounds[k]
            sym = self._y_stage.decode(sections[n], indexes[0][..., pos].cpu().numpy())
            symbols.append(sym)
            y_hat[:, c0:c1][..., pos] = self._y_stage.values(torch.from_numpy(sym).to(device)[None], means_q[..., pos])
        return y_hat.float().contiguous(), self.latent_digest(symbols)
