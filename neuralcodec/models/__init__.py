"""Transforms, the entropy stages each architecture uses, the registry and weights loading.

The registry (ids, descriptions, configs) imports no torch; ``Coded`` and ``ImageCodec`` are
imported on first use (PEP 562).
"""

from .registry import DEFAULT_MODEL, REGISTRY, ModelSpec, get_spec

__all__ = ["Coded", "ImageCodec", "DEFAULT_MODEL", "REGISTRY", "ModelSpec", "get_spec"]


def __getattr__(name: str):
    if name in ("Coded", "ImageCodec"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module 'neuralcodec.models' has no attribute '{name}'")
