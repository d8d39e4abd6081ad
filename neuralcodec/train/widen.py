"""Warm-start a hyperprior model with more latent channels from a narrower one's weights.

The widened model computes exactly what the narrow one did, plus ``M - M0`` new latent channels
that start out unused: every layer that *reads* latent-sized channels gets zero weights for the
new ones, every layer that *writes* them keeps its fresh initialization (so gradients reach the
new channels: zeroing both sides would be a saddle point), and the new channels' gains start at
the mean of the old ones per level. Training then decides what the new channels carry.

Latent-sized dims grow by ``d = M - M0`` (``y``, the hyper-synthesis's first layer), ``3d/2``
(its middle layer) or ``2d`` (scales and means, laid out ``[scales (M) | means (M) | rest]``: the
hyper-synthesis's output and the context corrections' input).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _latent_channels(state: dict[str, Tensor]) -> int:
    return state["gain.log_gain"].shape[1]


def _index(old: int, new: int, m0: int, d: int) -> Tensor:
    """Where each of ``old`` entries of a grown dim goes among ``new``."""
    idx = torch.arange(old)
    if new - old == 2 * d:  # [scales | means | rest]: the means and the rest move up
        return idx + d * ((idx >= m0).long() + (idx >= 2 * m0).long())
    if new - old in (d, 3 * d // 2):
        return idx  # the old channels first, the new ones after
    raise ValueError(f"cannot widen a dim of {old} to {new} (latent channels {m0} -> {m0 + d})")


def _input_dim(module: nn.Module, name: str) -> int | None:
    """The dim of parameter ``name`` of ``module`` that indexes input channels (None: none)."""
    if name != "weight":
        return None
    if isinstance(module, nn.ConvTranspose2d):
        return 0
    if isinstance(module, nn.Conv2d):
        return 1
    return None


def widen_state(state: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """``state`` (a narrower model's tensors) reshaped to ``model``'s; tensors the model lacks are
    dropped, the model's own tensors that ``state`` lacks (e.g. a new channel group's context) are
    left out for the caller to keep at their initialization."""
    own = model.state_dict()
    m0, m = _latent_channels(state), _latent_channels(own)
    if m0 > m:
        raise ValueError(f"cannot narrow {m0} latent channels to {m}")
    d = m - m0
    modules = dict(model.named_modules())
    params = dict(model.named_parameters())
    out: dict[str, Tensor] = {}
    for key, old in state.items():
        if key not in own:
            continue
        target = own[key]
        if target.shape == old.shape:
            out[key] = old
            continue
        if key not in params:
            continue  # a buffer (coding tables): rebuilt, not widened
        if target.dim() != old.dim():
            raise ValueError(f"{key}: {tuple(old.shape)} does not widen to {tuple(target.shape)}")
        old = old.to(target.dtype)
        module_name, _, param = key.rpartition(".")
        new = target.detach().clone()
        if key.startswith("gain."):  # (levels, M): new channels at the mean gain of each level
            new[:, m0:] = old.mean(1, keepdim=True)
            new[:, :m0] = old
            out[key] = new
            continue
        grown = [(dim, _index(o, t, m0, d)) for dim, (o, t) in enumerate(zip(old.shape, target.shape)) if o != t]
        places = [torch.arange(n) for n in old.shape]  # where each old entry goes, per dim
        for dim, idx in grown:
            places[dim] = idx
        new[tuple(_open_mesh(places))] = old
        in_dim = _input_dim(modules.get(module_name), param)
        for dim, idx in grown:  # read nothing from the new input channels
            if dim == in_dim:
                fresh = torch.ones(target.shape[dim], dtype=torch.bool)
                fresh[idx] = False
                new.index_fill_(dim, fresh.nonzero().flatten(), 0.0)
        out[key] = new
    return out


def _open_mesh(places: list[Tensor]) -> list[Tensor]:
    """The per-dim index vectors reshaped to broadcast against each other (like numpy.ix_)."""
    return [t.reshape([-1 if j == k else 1 for j in range(len(places))]) for k, t in enumerate(places)]
