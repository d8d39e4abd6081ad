"""Transforms, the entropy stages each architecture uses, the registry and weights loading."""

from .base import Coded, ImageCodec
from .registry import DEFAULT_MODEL, REGISTRY, ModelSpec, get_spec

__all__ = ["Coded", "ImageCodec", "DEFAULT_MODEL", "REGISTRY", "ModelSpec", "get_spec"]
