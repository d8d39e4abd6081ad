"""Image files to uint8 RGB arrays and back, with a documented colour policy.

Policy (README, "Inputs"): RGB is coded as is. Grey (L, 1, I;16) is coded as RGB and decoded
back to grey. Palette, CMYK, YCbCr and other modes are converted to RGB with a notice. 16-bit
inputs are reduced to 8 bits with a notice. An alpha channel that is fully opaque is dropped
with a notice; real transparency is refused (InputError). The EXIF orientation is applied (the
pixels are coded upright, the tag removed). Metadata travel in ``LoadedImage.metadata``: the ICC
profile (kept only if it describes the coded pixels: an RGB profile for colour, a grey one for
grey), EXIF (TIFF bytes, as in PNG's eXIf chunk) and XMP; the encoder keeps what ``--metadata``
asks for and :func:`save_image` writes them back where the output format can hold them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from ..bitstream import MAX_PIXELS, MAX_SIDE
from ..errors import InputError
from .files import write_atomic

Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow refuses decompression bombs beyond twice this


METADATA = ("icc", "exif", "xmp")
DEFAULT_METADATA = "icc"  # what a file keeps unless asked: colours display right, nothing private
_EXIF_PREFIX = b"Exif\x00\x00"
_ORIENTATION = 0x0112


class ColorPolicyWarning(UserWarning):
    """An input was converted (mode, bit depth, alpha or ICC profile) before coding."""


class MetadataWarning(UserWarning):
    """Metadata the output format cannot hold were left out."""


@dataclass
class LoadedImage:
    rgb: np.ndarray  # (H, W, 3) uint8
    channels: int  # 1 for grey sources, else 3
    bit_depth: int  # 8 or 16 in the source
    metadata: dict[str, bytes] = field(default_factory=dict)  # "icc" / "exif" / "xmp" found in the source


def metadata_kinds(spec: str | Iterable[str]) -> frozenset[str]:
    """Metadata to keep, cwebp-style: ``"none"``, ``"all"`` or a comma list of icc, exif, xmp."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    kinds = {i.strip().lower() for i in items if i.strip()}
    if kinds <= {"none"}:
        return frozenset()
    if kinds == {"all"}:
        return frozenset(METADATA)
    if kinds - set(METADATA):
        raise InputError(f"unknown metadata {', '.join(sorted(kinds - set(METADATA)))}: use none, all or a "
                         "comma list of icc, exif, xmp")
    return frozenset(kinds)


def _metadata(im: Image.Image, channels: int, name: str) -> dict[str, bytes]:
    """ICC profile (if it fits the coded pixels), EXIF (TIFF bytes) and XMP of a source image."""
    out = {}
    icc = im.info.get("icc_profile")
    if icc:
        space = bytes(icc[16:20])
        if space == (b"GRAY" if channels == 1 else b"RGB "):
            out["icc"] = bytes(icc)
        else:
            warnings.warn(f"{name}: ICC profile for {space.decode('latin-1').strip() or '?'} does not describe the "
                          "coded pixels: dropped", ColorPolicyWarning, stacklevel=4)
    exif = im.info.get("exif")
    if exif:
        exif = bytes(exif)
        exif = exif[len(_EXIF_PREFIX):] if exif.startswith(_EXIF_PREFIX) else exif
        if exif:
            out["exif"] = exif
    xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    if xmp:
        out["xmp"] = xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp)
    return out


def _upright(im: Image.Image, in_place: bool) -> Image.Image:
    """Apply the EXIF orientation (and remove the tag), as viewers do before showing the image."""
    if im.getexif().get(_ORIENTATION, 1) in (2, 3, 4, 5, 6, 7, 8):
        if in_place:
            ImageOps.exif_transpose(im, in_place=True)
            return im
        return ImageOps.exif_transpose(im)
    return im


def _check_size(im: Image.Image, name: str) -> None:
    if im.width * im.height > MAX_PIXELS or max(im.size) > MAX_SIDE:
        raise InputError(f"{name}: {im.width}x{im.height} exceeds the supported {MAX_PIXELS} pixels / {MAX_SIDE} per side")


def _from_pil(im: Image.Image, name: str) -> LoadedImage:
    loaded = _pixels(im, name)
    loaded.metadata = _metadata(im, loaded.channels, name)
    return loaded


def _pixels(im: Image.Image, name: str) -> LoadedImage:
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
        return _from_pil(_upright(source, in_place=False), "image")
    name = str(source)
    try:
        with Image.open(source) as im:
            _check_size(im, name)  # before decoding any pixels
            im.load()
            return _from_pil(_upright(im, in_place=True), name)
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise InputError(f"{name}: cannot read image ({exc.__class__.__name__})") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{name}: cannot read image ({exc})") from None


def to_pil(rgb: np.ndarray, channels: int) -> Image.Image:
    im = Image.fromarray(rgb, "RGB")
    return im.convert("L") if channels == 1 else im


# What each output format can carry, as Pillow save() arguments
_SAVES_METADATA = {"PNG": METADATA, "JPEG": METADATA, "WEBP": METADATA, "TIFF": ("icc",)}


def _metadata_args(fmt: str, metadata: dict[str, bytes], path: Path) -> dict:
    can = _SAVES_METADATA.get(fmt, ())
    left_out = sorted(k for k in metadata if k not in can)
    if fmt == "JPEG" and len(metadata.get("exif", b"")) > 65527:  # one APP1 segment
        left_out.append("exif (too long for JPEG)")
    if left_out:
        warnings.warn(f"{path}: {fmt} output cannot hold {', '.join(left_out)} metadata: left out",
                      MetadataWarning, stacklevel=3)
    args: dict = {}
    if "icc" in metadata and "icc" in can:
        args["icc_profile"] = metadata["icc"]
    if "exif" in metadata and "exif" in can and not any(k.startswith("exif") for k in left_out):
        args["exif"] = _EXIF_PREFIX + metadata["exif"]
    if "xmp" in metadata and "xmp" in can:
        if fmt == "PNG":
            info = PngImagePlugin.PngInfo()
            info.add_itxt("XML:com.adobe.xmp", metadata["xmp"].decode("utf-8", "replace"))
            args["pnginfo"] = info
        else:
            args["xmp"] = metadata["xmp"]
    return args


def save_image(rgb: np.ndarray, path: str | Path, channels: int = 3, metadata: dict[str, bytes] | None = None) -> None:
    """Write atomically; the format follows the extension (PNG, JPEG, WebP, TIFF, BMP...).
    ``metadata`` (``"icc"``, ``"exif"``, ``"xmp"`` -> bytes) go where the format can hold them."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE or fmt == "NCF":  # decoding to .ncf would re-encode
        raise InputError(f"{path}: unknown image format for extension '{path.suffix}'")
    im = to_pil(rgb, channels)
    args = _metadata_args(fmt, metadata or {}, path)
    write_atomic(path, lambda tmp: im.save(tmp, format=fmt, **args))
