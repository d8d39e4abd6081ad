"""The Python API: images to container bytes and back.

    from neuralcodec import encode_image, decode
    enc = encode_image("photo.png", quality=3.5)      # enc.data: the .ncf bytes
    dec = decode(enc.data)                             # dec.rgb == enc.rgb, bit for bit
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import bitstream
from .errors import (
    InvalidHeaderError,
    LatentMismatchError,
    ModelError,
    PixelLimitError,
    ReconstructionMismatchWarning,
)
from .io.images import DEFAULT_METADATA, LoadedImage, load_image, metadata_kinds
from .models import DEFAULT_MODEL, refine
from .models.determinism import deterministic
from .models.weights import LoadedModel, load_model, load_model_for_digest

DEFAULT_QUALITY = None  # None: the model's default quality from weights/manifest.json
# Largest image decode() accepts unless told otherwise: 48 Mi pixels (docs/bitstream.md, "Pixel limit")
DEFAULT_MAX_PIXELS = bitstream.DEFAULT_MAX_PIXELS
ImageSource = str | Path | Image.Image | LoadedImage


@dataclass
class EncodedImage:
    data: bytes  # the complete .ncf file
    header: bitstream.Header
    rgb: np.ndarray | None  # (H, W, 3) uint8, exactly what decode() returns; None unless reconstruct=True
    latent: torch.Tensor | None = None  # (M, h, w) dequantized latent, exactly what decode_latent() returns

    @property
    def bpp(self) -> float:
        """Bits per pixel of the whole file, header included."""
        return len(self.data) * 8 / (self.header.height * self.header.width)


@dataclass
class DecodedImage:
    header: bitstream.Header
    rgb: np.ndarray  # (H, W, 3) uint8; grey sources have three equal channels
    metadata: dict[str, bytes] = field(default_factory=dict)  # "icc" / "exif" / "xmp" the file carries

    def to_pil(self) -> Image.Image:
        from .io.images import to_pil

        return to_pil(self.rgb, self.header.channels)

    def _repr_png_(self) -> bytes:
        """PNG bytes, so notebooks show a decoded image as a picture."""
        import io

        buf = io.BytesIO()
        self.to_pil().save(buf, "PNG")
        return buf.getvalue()


NO_DIGEST = bytes(16)  # image digest field of a file whose encoder did not reconstruct


def image_digest(rgb: np.ndarray) -> bytes:
    """BLAKE2b-128 of an 8-bit (H, W, 3) image, as stored in the header."""
    return hashlib.blake2b(np.ascontiguousarray(rgb).tobytes(), digest_size=16).digest()


def _quality_milli(model: LoadedModel, quality: float | None) -> int:
    quality = model.default_quality if quality is None else quality
    model.check_quality(float(quality))
    return int(round(float(quality) * 1000))


def encode_images(
    images: Iterable[ImageSource],
    model: str = DEFAULT_MODEL,
    quality: float | None = DEFAULT_QUALITY,
    device: str = "cpu",
    batch: int = 4,
    reconstruct: bool = False,
    metadata: str | Iterable[str] = DEFAULT_METADATA,
    effort: int = 0,
) -> Iterator[EncodedImage]:
    """Encode images in input order; same-size images in a chunk of ``batch`` share one network call.

    ``reconstruct=True`` also runs the synthesis (as long again as the analysis) to return the
    decoder's exact output in ``.rgb`` and record its digest, so a decoder on another device can
    tell if its pixels drift. ``metadata`` names what the file keeps of the source's metadata:
    ``"none"``, ``"all"`` or a comma list of ``icc``, ``exif``, ``xmp`` (default ``"icc"``).
    ``effort`` 1..6 refines each image's latents by gradient steps before coding (smaller files at
    the same quality, slower: :mod:`neuralcodec.models.refine`); 0 is the one-pass encoder.
    """
    refine.schedule(effort)  # a bad effort fails before any work
    loaded = load_model(model, device)
    q_milli = _quality_milli(loaded, quality)
    keep = metadata_kinds(metadata)
    chunk: list[LoadedImage] = []
    for src in images:
        chunk.append(src if isinstance(src, LoadedImage) else load_image(src))
        if len(chunk) == batch:
            yield from _encode_chunk(loaded, chunk, q_milli, reconstruct, keep, effort)
            chunk = []
    if chunk:
        yield from _encode_chunk(loaded, chunk, q_milli, reconstruct, keep, effort)


def encode_image(
    image: ImageSource,
    model: str = DEFAULT_MODEL,
    quality: float | None = DEFAULT_QUALITY,
    device: str = "cpu",
    reconstruct: bool = False,
    metadata: str | Iterable[str] = DEFAULT_METADATA,
    effort: int = 0,
) -> EncodedImage:
    """Encode one image (path, PIL image or LoadedImage); see :func:`encode_images`."""
    return next(encode_images([image], model, quality, device, batch=1, reconstruct=reconstruct, metadata=metadata,
                              effort=effort))


def encode_to_target(
    image: ImageSource,
    model: str = DEFAULT_MODEL,
    bpp: float | None = None,
    psnr: float | None = None,
    device: str = "cpu",
    steps: int = 8,
    metadata: str | Iterable[str] = DEFAULT_METADATA,
    effort: int = 0,
) -> EncodedImage:
    """Encode at the quality that meets a target: the highest quality whose file is at most ``bpp``
    bits per pixel, or the lowest whose PSNR-RGB is at least ``psnr`` dB (bisection over the
    continuous quality, ``steps`` probes). An unreachable target gives the nearest end of the
    shipped range with a ``UserWarning``. The result always carries its reconstruction."""
    from .metrics import psnr as measure_psnr

    if (bpp is None) == (psnr is None):
        raise ValueError("give exactly one of bpp or psnr")
    img = image if isinstance(image, LoadedImage) else load_image(image)
    lo, hi = load_model(model, device).quality_range

    def meets(q: float) -> tuple[bool, EncodedImage]:
        enc = encode_image(img, model, round(q, 3), device, reconstruct=True, metadata=metadata, effort=effort)
        ok = enc.bpp <= bpp if bpp is not None else measure_psnr(img.rgb, enc.rgb) >= psnr
        return ok, enc

    # bpp: meets() holds below the answer; psnr: above it. Keep `good` on the side that meets.
    want_low = bpp is not None
    good_q, bad_q = (lo, hi) if want_low else (hi, lo)
    ok, best = meets(good_q)
    if not ok:
        warnings.warn(f"target not reachable with '{model}': using quality {good_q:g}", stacklevel=2)
        return best
    ok_end, end = meets(bad_q)
    if ok_end:
        return end
    for _ in range(steps):
        mid = (good_q + bad_q) / 2
        ok, enc = meets(mid)
        if ok:
            good_q, best = mid, enc
        else:
            bad_q = mid
    return best


# --effort's gradient steps hold the whole image's backward pass (about 1 GB per Mpixel, untiled):
# above this size the one-pass encoder codes the image, with a notice, so memory stays bounded.
EFFORT_MAX_PIXELS = 1 << 22  # 4 Mpixel


def _effort_for(effort: int, height: int, width: int) -> int:
    if effort and height * width > EFFORT_MAX_PIXELS:
        warnings.warn(f"--effort {effort} refines images up to {EFFORT_MAX_PIXELS} pixels; this "
                      f"{width}x{height} image is coded with effort 0", UserWarning, stacklevel=3)
        return 0
    return effort


def _encode_chunk(
    loaded: LoadedModel, images: list[LoadedImage], q_milli: int, reconstruct: bool, keep: frozenset[str],
    effort: int = 0,
) -> Iterator[EncodedImage]:
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, im in enumerate(images):
        by_size.setdefault(im.rgb.shape[:2], []).append(i)
    results: dict[int, EncodedImage] = {}
    k = loaded.model.downsampling
    for (h, w), idx in by_size.items():
        pb, pr = -h % k, -w % k
        # uint8 (edge padding = replicate): the model converts to float tile by tile
        x = np.stack([np.pad(images[i].rgb, ((0, pb), (0, pr), (0, 0)), mode="edge") for i in idx])
        x = torch.from_numpy(x).to(loaded.device).permute(0, 3, 1, 2)
        with deterministic(loaded.device):
            coded_all = refine.compress(loaded.model, x, q_milli / 1000, _effort_for(effort, h, w), reconstruct=False,
                                        lambdas=refine.trained_lambdas(loaded.model_id))
        for i, coded in zip(idx, coded_all):
            im = images[i]
            # the decoder's own path (tiled for large images), so decode() == rgb bit for bit
            with deterministic(loaded.device):
                rgb = loaded.model.reconstruct(coded.latent, q_milli / 1000, h, w) if reconstruct else None
            header = bitstream.Header(
                loaded.model_id, loaded.digest, q_milli, h, w, im.channels, im.bit_depth, pb, pr, 1,
                coded.latent_digest, image_digest(rgb) if reconstruct else NO_DIGEST,
            )
            latent = coded.latent[0] if coded.latent is not None else None
            meta = {k: v for k, v in im.metadata.items() if k in keep}
            results[i] = EncodedImage(bitstream.pack(header, coded.sections, meta), header, rgb, latent)
    for i in range(len(images)):
        yield results[i]


def read_header(data: bytes) -> bitstream.Header:
    """Parse and validate a file's header and sections without decoding."""
    return bitstream.unpack(data).header


def _open(data: bytes | bitstream.Container, device: str) -> tuple[bitstream.Container, LoadedModel, int, int]:
    """Parse and validate a file against the installed weights; returns the padded size too."""
    container = data if isinstance(data, bitstream.Container) else bitstream.unpack(data)
    h = container.header
    try:  # the installed version whose weights the file names (every shipped version stays installed)
        loaded = load_model_for_digest(h.model_id, h.weights_digest, device)
    except ModelError as exc:
        raise ModelError(f"this file needs model '{h.model_id}': {exc}") from None
    k = loaded.model.downsampling
    ph, pw = h.height + h.pad_bottom, h.width + h.pad_right
    if ph % k or pw % k or h.pad_bottom >= k or h.pad_right >= k:
        raise InvalidHeaderError(f"padding {h.pad_bottom}/{h.pad_right} does not fit model '{h.model_id}'")
    lo, hi = loaded.quality_range  # the range the weights are shipped for, not the model's levels
    if not (lo <= h.quality <= hi):
        raise InvalidHeaderError(f"file's quality {h.quality:g} is outside {lo:g}..{hi:g}, the range the "
                                 f"installed weights of '{h.model_id}' are shipped for")
    return container, loaded, ph, pw


def _parse(data: bytes, max_pixels: int | None) -> bitstream.Container:
    """Parse and validate the container, and refuse an image above ``max_pixels`` (before any
    symbol is decoded or the model is loaded)."""
    container = bitstream.unpack(data)
    h = container.header
    if max_pixels is not None and h.height * h.width > max_pixels:
        raise PixelLimitError(
            f"image is {h.width}x{h.height} = {h.height * h.width} pixels, above this decoder's limit of "
            f"{max_pixels} (raise it with --max-pixels N, or max_pixels=N in the API; the format allows up "
            f"to {bitstream.MAX_PIXELS})"
        )
    return container


def _check_latents(digest: bytes, container: bitstream.Container) -> None:
    if digest == container.header.latent_digest:
        return
    if container.version >= (1, 1):  # the binding digest matched: the bytes are as their writer left them
        cause = ("the file is intact (its binding digest matches), so the encoder that wrote it computed "
                 "other coding parameters than this decoder: a different build, platform or device")
    else:
        cause = ("the file is damaged in a way its checksums missed, or it was encoded by a different "
                 "build, platform or device")
    raise LatentMismatchError(f"decoded latents do not match the encoder's: {cause}")


def _check_pixels(rgb: np.ndarray, container: bitstream.Container) -> None:
    h = container.header
    if h.image_digest == NO_DIGEST or image_digest(rgb) == h.image_digest:
        return
    field_trust = ("" if container.version >= (1, 1) else
                   ", or the header's image-digest field was altered (format 1.0 cannot tell which)")
    warnings.warn(
        "decoded pixels are not bit-identical to the encoder's reconstruction although the latents match "
        "exactly: the synthesis ran with other float round-off (device, thread count or library build)"
        + field_trust,
        ReconstructionMismatchWarning,
        stacklevel=3,
    )


def decode(data: bytes, device: str = "cpu", max_pixels: int | None = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode a .ncf file's bytes to (H, W, 3) uint8; raises a BitstreamError subclass on any
    mismatch or damage, PixelLimitError above ``max_pixels`` (None: only the format's limit).
    The latents are checked against the file's digest before the synthesis runs."""
    container, loaded, ph, pw = _open(_parse(data, max_pixels), device)
    h = container.header
    with deterministic(device):
        latent, digest = loaded.model.decode_latent(container.sections, ph, pw, h.quality, device)
        _check_latents(digest, container)  # before the synthesis: damaged data costs no transform
        rgb = loaded.model.reconstruct(latent, h.quality, h.height, h.width)
    _check_pixels(rgb, container)
    return DecodedImage(h, rgb, dict(container.metadata))


def decode_latent(
    data: bytes, device: str = "cpu", max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[torch.Tensor, bitstream.Header]:
    """Entropy-decode a file's latent (M, h, w) without running the synthesis transform; it covers
    the padded image (h = padded height / 16). Same validation and errors as :func:`decode`."""
    container, loaded, ph, pw = _open(_parse(data, max_pixels), device)
    with deterministic(device):
        latent, digest = loaded.model.decode_latent(container.sections, ph, pw, container.header.quality, device)
    _check_latents(digest, container)
    return latent[0], container.header
