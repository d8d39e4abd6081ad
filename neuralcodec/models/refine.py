"""Encoder-side refinement of latents (``ncodec encode --effort N``), no retraining, no format change.

The amortized analysis transform gives each image's latents in one pass; a few gradient steps on
that image's own rate-distortion loss ``R + lambda * D`` find latents that code it better
(Yang, Bamler & Mandt 2020, "Improving Inference for Neural Image Compression"). Rounding is
relaxed by stochastic Gumbel annealing (SGA): each latent becomes a random soft mix of its floor
and ceiling whose temperature falls towards hard rounding as the steps go on. The refined latents
are then coded by the model's ordinary coding passes, so files and decoder are unchanged.

The model's weights stay frozen: gradients are taken with respect to the latents only
(``torch.autograd.grad``), so no parameter's ``.grad`` or value changes and the shared cached model
can keep coding for other callers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .base import Coded, ImageCodec
from .determinism import fast_bf16
from .gain import GainUnits
from .transforms import Rounder

MAX_EFFORT = 6
# Gradient steps per effort level (index = effort): encode time doubles per level, and effort 6
# takes about 45 CPU-seconds for a 768x512 image on one thread (docs/benchmarks.md).
STEPS = (0, 4, 8, 16, 32, 64, 128)
Z_FROM_EFFORT = 1  # from this effort on the hyper-latent z is refined together with y
# compressai's MSE lambdas, which every shipped model was trained with (manifest "training.lambdas")
DEFAULT_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483)


@dataclass(frozen=True)
class Schedule:
    """How one refinement runs: ``steps`` Adam steps with learning rate ``lr`` (cosine decay to
    zero), SGA temperature from ``tau0`` down to ``tau1`` (geometric)."""

    steps: int
    refine_z: bool = True
    lr: float = 0.06
    tau0: float = 0.5
    tau1: float = 0.2
    bf16: bool | None = None  # autocast the differentiable passes (2.5x faster where native; coding stays
    # float32); None: where fast_bf16 says it is native


def schedule(effort: int) -> Schedule:
    """The schedule of an effort level 0..MAX_EFFORT (0: no refinement, today's one-pass encoder)."""
    if not 0 <= effort <= MAX_EFFORT:
        raise ValueError(f"effort must be an integer from 0 to {MAX_EFFORT}, got {effort}")
    steps = STEPS[effort]
    # short runs need smaller steps: the SGA noise does not average out (tuned on Kodak 1 and 5);
    # 0.02 from 16 steps on (tuned on elic-context-hyperprior@5, Kodak 1, 7 and 19)
    return Schedule(steps, refine_z=effort >= Z_FROM_EFFORT, lr=min(0.02, 0.005 * math.sqrt(steps)))


def trained_lambdas(model_id: str) -> list[float]:
    """The lambdas a shipped model was trained with (its manifest entry), else compressai's."""
    from .manifest import read_manifest

    entry = read_manifest()["models"].get(model_id, {})
    return list(entry.get("training", {}).get("lambdas") or DEFAULT_LAMBDAS)


def lambda_at(quality: float, lambdas: tuple[float, ...] | list[float] = DEFAULT_LAMBDAS) -> float:
    """Lagrange multiplier (MSE on the 0..255 scale) of a quality: the trained lambdas (qualities
    1..L) interpolated geometrically, and below quality 1 extrapolated the way the gain units
    extrapolate their gains, so each operating point keeps its own rate-distortion trade-off."""
    log_table = torch.tensor(list(lambdas), dtype=torch.float64).log()[:, None]
    q = torch.tensor([float(quality)], dtype=torch.float64)
    return float(GainUnits._interpolate(log_table, q).exp())


def sga_rounder(tau: float, generator: torch.Generator | None = None) -> Rounder:
    """Stochastic Gumbel annealing at temperature ``tau``: ``x`` becomes a Gumbel-softmax mix of
    floor(x) and ceil(x), weighted towards the nearer one; as ``tau`` falls the mix tends to a
    hard rounding. Tensors that do not require gradients are rounded exactly."""
    eps = 1e-5

    def rounder(x: Tensor) -> Tensor:
        if not x.requires_grad:
            return torch.round(x)
        lo = torch.floor(x.detach())
        frac = (x - lo).clamp(eps, 1 - eps)
        logits = torch.stack([-torch.atanh(frac), -torch.atanh(1 - frac)], -1) / tau
        u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
        gumbel = -torch.log(-torch.log(u.clamp(eps, 1 - eps)))
        weights = torch.softmax((logits + gumbel) / tau, -1)
        return lo + weights[..., 1]

    return rounder


def rd_loss(x: Tensor, x_hat: Tensor, likelihoods: list[Tensor], lam: float) -> Tensor:
    """Bits per pixel + lam * 255^2 * MSE of each image (B,): the training loss."""
    pixels = x.shape[2] * x.shape[3]
    bpp = sum((-torch.log2(lik)).flatten(1).sum(1) for lik in likelihoods) / pixels
    mse = (x_hat.float() - x).pow(2).flatten(1).mean(1)
    return bpp + lam * 255**2 * mse


@torch.no_grad()
def rounded_loss(model: ImageCodec, x: Tensor, y: Tensor, z: Tensor | None, quality: float, lam: float) -> Tensor:
    """The loss (B,) with hard rounding: what coding the latents would cost (rate as estimated by
    the model's likelihoods)."""
    x_hat, liks = model.relaxed(y, z, quality, torch.round)
    return rd_loss(x, x_hat.clamp(0, 1), liks, lam)


def refine_latents(model: ImageCodec, x: Tensor, quality: float, plan: Schedule, lam: float,
                   seed: int = 0) -> tuple[Tensor, Tensor | None]:
    """Refined latents ``(y, z)`` of a batch ``x`` (B, 3, H, W), float in [0, 1] or uint8, in the
    units ``model.analyze`` returns (deterministic for a given ``seed``)."""
    y0, z0 = model.analyze(x, quality)
    if plan.steps == 0:
        return y0, z0
    x = x.float().div(255) if x.dtype == torch.uint8 else x
    y = y0.detach().clone().requires_grad_(True)
    z = None if z0 is None else z0.detach().clone().requires_grad_(plan.refine_z)
    params = [y, z] if plan.refine_z and z is not None else [y]
    opt = torch.optim.Adam(params, lr=plan.lr)
    gen = torch.Generator(device=x.device).manual_seed(seed)
    bf16 = fast_bf16(x.device) if plan.bf16 is None else plan.bf16
    for t in range(plan.steps):
        frac = t / max(plan.steps - 1, 1)
        for group in opt.param_groups:
            group["lr"] = plan.lr * 0.5 * (1 + math.cos(math.pi * t / plan.steps))
        rounder = sga_rounder(plan.tau0 * (plan.tau1 / plan.tau0) ** frac, gen)
        with torch.enable_grad(), torch.autocast(x.device.type, torch.bfloat16, enabled=bf16):
            x_hat, liks = model.relaxed(y, z, quality, rounder)
            grads = torch.autograd.grad(rd_loss(x, x_hat, liks, lam).sum(), params)
        if not all(torch.isfinite(g).all() for g in grads):
            continue  # a step that would make the latents non-finite is skipped
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
    y, z = y.detach(), None if z is None else z.detach()
    # keep each image's refined latents only where rounding them really costs less
    better = (rounded_loss(model, x, y, z, quality, lam) < rounded_loss(model, x, y0, z0, quality, lam))
    keep = better[:, None, None, None]
    return torch.where(keep, y, y0), None if z is None else torch.where(keep, z, z0)


def compress(model: ImageCodec, x: Tensor, quality: float, effort: int = 0, reconstruct: bool = True,
             lambdas: tuple[float, ...] | list[float] = DEFAULT_LAMBDAS) -> list[Coded]:
    """``model.compress`` with the latents refined at ``effort`` first (0: exactly ``model.compress``)."""
    plan = schedule(effort)
    if plan.steps == 0:
        return model.compress(x, quality, reconstruct)
    # one image at a time: the backward pass holds about 1 GB per megapixel
    lam = lambda_at(quality, lambdas)
    ys, zs = zip(*(refine_latents(model, x[i : i + 1], quality, plan, lam) for i in range(x.shape[0])))
    z = None if zs[0] is None else torch.cat(zs)
    return model.compress_latents(torch.cat(ys), z, quality, reconstruct)
