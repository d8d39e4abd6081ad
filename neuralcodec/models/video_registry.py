"""Stable video model ids, the image model each codes frames with, and their configs (no torch).
Ids are written into .ncv files: never rename one."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from ..errors import ModelError


@dataclass(frozen=True)
class VideoSpec:
    id: str
    description: str
    image_model: str
    config: dict[str, Any] = field(default_factory=dict)
    factory: str = "stem:TemporalEntropyModel"  # "module:Class" in neuralcodec.models

    def build(self):
        """A fresh P-frame entropy model (:mod:`~neuralcodec.models.stem`) with this config."""
        module, cls = self.factory.split(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), cls)(**self.config)


VIDEO_REGISTRY: dict[str, VideoSpec] = {
    s.id: s
    for s in [
        VideoSpec(
            "stem-msh",
            "Spatiotemporal entropy model (temporal prior on the previous decoded latent + hyperprior + "
            "checkerboard, 2 latent passes per P-frame) on mean-scale-hyperprior's frozen transforms",
            "mean-scale-hyperprior",
            {"M": 128, "N": 96, "hidden": 96},
        ),
        VideoSpec(
            "stem-elic",
            "Spatiotemporal entropy model (temporal prior on the previous decoded latent + hyperprior + "
            "checkerboard, 2 latent passes per P-frame) on elic-context-hyperprior's frozen transforms; "
            "I-frames are its 8-pass images",
            "elic-context-hyperprior",
            {"M": 128, "N": 96, "hidden": 96},
        ),
        VideoSpec(
            "stem-elic-cg",
            "Spatiotemporal entropy model in elic-context-hyperprior's own 8 channel-group passes: its "
            "hyperprior and context nets plus a temporal prior on the previous decoded latent; on its frozen "
            "transforms, I-frames are its images",
            "elic-context-hyperprior",
            {"M": 128, "N": 96, "groups": [16, 16, 32, 64], "hidden": 96, "temporal": 96},
            "stem_groups:GroupedTemporalEntropyModel",
        ),
        VideoSpec(
            "stem-elic-copy",
            "stem-elic-cg plus a copy gate per channel group that moves its means toward the group's own "
            "channels of the previous decoded latent and shifts its scales (still and slow content)",
            "elic-context-hyperprior",
            {"M": 128, "N": 96, "groups": [16, 16, 32, 64], "hidden": 96, "temporal": 96, "copy_hidden": 64},
            "stem_groups:GroupedTemporalEntropyModel",
        ),
    ]
}
DEFAULT_VIDEO_MODEL = "stem-elic-copy"  # measured better than stem-elic-cg, stem-elic and stem-msh (docs/benchmarks.md, "stem-elic-copy")


def get_video_spec(model_id: str) -> VideoSpec:
    try:
        return VIDEO_REGISTRY[model_id]
    except KeyError:
        raise ModelError(f"unknown video model '{model_id}' (known: {', '.join(sorted(VIDEO_REGISTRY))})") from None


def video_model_for_image(image_model: str) -> str | None:
    """The video model ``--model IMAGE_MODEL`` means: the default video model if it codes frames
    with that image model, else the first registered one that does (None if none does)."""
    if VIDEO_REGISTRY[DEFAULT_VIDEO_MODEL].image_model == image_model:
        return DEFAULT_VIDEO_MODEL
    return next((s.id for s in VIDEO_REGISTRY.values() if s.image_model == image_model), None)
