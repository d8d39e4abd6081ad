"""Reading and writing images (Pillow) with the colour policy; atomic file output.

Imported on first use (PEP 562), so ``import neuralcodec`` can register the Pillow plugin
(:mod:`.pillow_plugin`) without importing numpy.
"""

_EXPORTS = {"write_atomic": "files", "ColorPolicyWarning": "images", "load_image": "images", "save_image": "images"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
