"""neuralcodec: learned image compression with real files on disk."""

import warnings as _warnings

with _warnings.catch_warnings():
    # compressai's layers use torch.jit.script, which torch 2.14 deprecates with a FutureWarning
    # on every import; it says nothing to our users.
    _warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit\.script.*")
    import compressai  # noqa: F401

from .codec import DEFAULT_QUALITY, DecodedImage, EncodedImage, decode, encode_image, encode_images, encode_to_target, read_header
from .errors import NeuralCodecError

__version__ = "0.1.0"
__all__ = [
    "DEFAULT_QUALITY", "DecodedImage", "EncodedImage", "decode", "encode_image", "encode_images", "encode_to_target",
    "read_header", "NeuralCodecError",
]
