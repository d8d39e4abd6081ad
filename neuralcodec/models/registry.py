"""Stable model ids and their configurations. Ids are written into files: never rename one."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ModelError

if TYPE_CHECKING:
    from .base import ImageCodec


@dataclass(frozen=True)
class ModelSpec:
    id: str
    description: str
    factory: str  # "module:Class" in neuralcodec.models, imported by build() (the registry needs no torch)
    config: dict[str, Any] = field(default_factory=dict)

    def build(self) -> ImageCodec:
        module, cls = self.factory.split(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), cls)(**self.config)


_SPECS = [
    ModelSpec(
        "mean-scale-hyperprior",
        "Mean-scale hyperprior (Minnen et al. 2018) with gain units for continuous quality",
        "hyperprior:Hyperprior",
        {"N": 96, "M": 128, "levels": 6, "mean": True},
    ),
    ModelSpec(
        "scale-hyperprior",
        "Scale hyperprior (Balle et al. 2018) with gain units for continuous quality",
        "hyperprior:Hyperprior",
        {"N": 96, "M": 128, "levels": 6, "mean": False},
    ),
    ModelSpec(
        "factorized-prior",
        "Factorized prior (Balle et al. 2018), no side information, with gain units",
        "factorized:FactorizedPrior",
        {"N": 96, "M": 128, "levels": 6},
    ),
    ModelSpec(
        "checkerboard-hyperprior",
        "Mean-scale hyperprior + checkerboard spatial context (He et al. 2021): 2 latent passes",
        "context:ContextHyperprior",
        {"N": 96, "M": 128, "levels": 6, "groups": [128], "checkerboard": True, "hidden": 192},
    ),
    ModelSpec(
        "elic-context-hyperprior",
        "Mean-scale hyperprior + ELIC-style uneven channel groups with checkerboard inside: 8 latent passes",
        "context:ContextHyperprior",
        {"N": 96, "M": 128, "levels": 6, "groups": [16, 16, 32, 64], "checkerboard": True, "hidden": 96},
    ),
    ModelSpec(
        "walloc-16x",
        "WaLLoC (Jacobellis & Yadwadkar): CDF 9/7 wavelet packets (J=4), linear encoder to 48 channels, "
        "residual decoder; latent 16x smaller than the image",
        "walloc:WaLLoC",
        {"latent": 48, "levels": 6, "J": 4, "wavelet": "bior4.4", "width": 192, "blocks": 3},
    ),
]

REGISTRY: dict[str, ModelSpec] = {s.id: s for s in _SPECS}
DEFAULT_MODEL = "elic-context-hyperprior"  # best shipped model (docs/benchmarks.md); 1.3x the hyperprior's decode time


def get_spec(model_id: str) -> ModelSpec:
    try:
        return REGISTRY[model_id]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ModelError(f"unknown model '{model_id}' (known: {known})") from None
