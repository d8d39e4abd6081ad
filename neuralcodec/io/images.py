"""Image files to uint8 RGB arrays and back, with a documented colour policy.

Policy (README, "Inputs"): RGB is coded as is. Grey (L, 1, I;16) is coded as RGB and decoded
back to grey. Palette, CMYK, YCbCr and other modes are converted to RGB with a notice. 16-bit
inputs are reduced to 8 bits with a notice. An alpha channel that is fully opaque is dropped
with a notice; real transparency is refused (InputError).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..bitstream import MAX_PIXELS, MAX_SIDE
from ..errors import InputError
from .files import write_atomic

Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow refuses decompression bombs beyond twice this


class ColorPolicyWarning(UserWarning):
    """An input was converted (mode, bit depth or alpha) before coding."""


@dataclass
class LoadedImage:
    rgb: np.ndarray  # (H, W, 3) uint8
    channels: int  # 1 for grey sources, else 3
    bit_depth: int  # 8 or 16 in the source


def _check_size(im: Image.Image, name: str) -> None:
    if im.width * im.height > MAX_PIXELS or max(im.size) > MAX_SIDE:
        raise InputError(f"{name}: {im.width}x{im.height} exceeds the supported {MAX_PIXELS} pixels / {MAX_SIDE} per side")


def _from_pil(im: Image.Image, name: str) -> LoadedImage:
    _check_size(im, name)
    mode = im.mode
    bit_depth = 16 if mode.startswith("I") else 8
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if arr.max() > 255 or mode.startswith("I;16") else 255.0
        grey = np.clip(np.round(arr / hi * 255.0), 0, 255).astype(np.uint8)
        warnings.warn(f"{name}: {mode} image reduced to 8 bits", ColorPolicyWarning, stacklevel=3)
        return LoadedImage(np.repeat(grey[:, :, None], 3, axis=2), 1, 16)
    if mode == "F":
        raise InputError(f"{name}: floating-point images are not supported")
    if "A" in mode or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("LA" if mode in ("LA", "La") else "RGBA")
        alpha = np.asarray(rgba)[..., -1]
        if alpha.min() < 255:
            raise InputError(f"{name}: images with transparency are not supported")
        warnings.warn(f"{name}: opaque alpha channel dropped", ColorPolicyWarning, stacklevel=3)
        im = rgba.convert("L" if mode in ("LA", "La") else "RGB")
        mode = im.mode
    if mode in ("L", "1"):
        grey = np.asarray(im.convert("L"))
        return LoadedImage(np.repeat(grey[:, :, None], 3, axis=2), 1, bit_depth)
    if mode != "RGB":
        warnings.warn(f"{name}: {mode} image converted to RGB", ColorPolicyWarning, stacklevel=3)
        im = im.convert("RGB")
    return LoadedImage(np.asarray(im).copy(), 3, bit_depth)


def load_image(source: str | Path | Image.Image) -> LoadedImage:
    """Read an image file (or take a PIL image) and apply the colour policy."""
    if isinstance(source, Image.Image):
        return _from_pil(source, "image")
    name = str(source)
    try:
        with Image.open(source) as im:
            _check_size(im, name)  # before decoding any pixels
            im.load()
            return _from_pil(im, name)
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise InputError(f"{name}: cannot read image ({exc.__class__.__name__})") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{name}: cannot read image ({exc})") from None


def to_pil(rgb: np.ndarray, channels: int) -> Image.Image:
    im = Image.fromarray(rgb, "RGB")
    return im.convert("L") if channels == 1 else im


def save_image(rgb: np.ndarray, path: str | Path, channels: int = 3) -> None:
    """Write atomically; the format follows the extension (PNG, JPEG, WebP, TIFF, BMP...)."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise InputError(f"{path}: unknown image format for extension '{path.suffix}'")
    im = to_pil(rgb, channels)
    write_atomic(path, lambda tmp: im.save(tmp, format=fmt))
