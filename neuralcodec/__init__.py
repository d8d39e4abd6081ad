"""neuralcodec: learned image compression with real files on disk.

The codec API (``encode_image``, ``decode``, ...) is imported on first use (PEP 562), so
``import neuralcodec``, ``neuralcodec.bitstream`` and ``neuralcodec.errors`` need no torch and the
CLI's ``--help``, ``info`` and ``models`` start in a fraction of a second.
"""

from .errors import NeuralCodecError
from .io import pillow_plugin as _pillow_plugin  # noqa: F401  Image.open / save of .ncf (no torch)

__version__ = "0.1.0"
_CODEC_API = (
    "DEFAULT_QUALITY", "DecodedImage", "EncodedImage", "decode", "encode_image", "encode_images", "encode_to_target",
    "read_header",
)
__all__ = [*_CODEC_API, "NeuralCodecError"]


def __getattr__(name: str):
    if name in _CODEC_API:
        from . import codec

        return getattr(codec, name)
    raise AttributeError(f"module 'neuralcodec' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*globals(), *_CODEC_API])
