"""Rate-distortion evaluation on real files: our models against Pillow's JPEG, WebP and AVIF.

Every point codes whole files: bpp counts all bytes of the file (our header included); PSNR-RGB
and MS-SSIM are measured on the decoded 8-bit images, and our files are checked to decode to
exactly the encoder's reconstruction. Used by ``ncodec eval`` and ``scripts/eval_rd.py``.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from . import codec
from .errors import NeuralCodecError
from .io.files import list_images
from .io.images import LoadedImage, load_image
from .metrics import bd_rate, dist_at_rate, ms_ssim, psnr

PILLOW = {
    "jpeg": ("JPEG", [1, 3, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95], {}),
    "webp": ("WEBP", [0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95], {"method": 6}),
    "avif": ("AVIF", [5, 10, 20, 30, 40, 50, 60, 70, 80, 90], {}),
}
Point = dict[str, float]
Progress = Callable[[str], None]


def image_paths(folder: str | Path, limit: int = 0) -> list[Path]:
    """The image files :func:`load_folder` reads, in its order (NeuralCodecError if there are none)."""
    paths = list_images(folder)[: limit or None]
    if not paths:
        raise NeuralCodecError(f"no images found in {folder}")
    return paths


def load_folder(folder: str | Path, limit: int = 0) -> list[np.ndarray]:
    """The images of a folder as (H, W, 3) uint8 arrays, sorted by path, read with the codec's
    colour policy (an unreadable file raises InputError naming it)."""
    return [load_image(p).rgb for p in image_paths(folder, limit)]


def spread(quality_range: tuple[float, float], n: int) -> list[float]:
    """``n`` qualities evenly over a model's shipped range, rounded to what the header stores."""
    lo, hi = quality_range
    return [round(float(q), 3) for q in np.linspace(lo, hi, n)]


POINT_KEYS = ("bpp", "psnr", "ms_ssim", "encoding_time", "decoding_time")


def mean_point(points: list[Point]) -> Point:
    """The mean over images of per-image points of one setting."""
    return {"quality": points[0]["quality"], **{k: float(np.mean([p[k] for p in points])) for k in POINT_KEYS}}


def _per_image(quality: float, rows: list[tuple[float, ...]]) -> list[Point]:
    return [{"quality": quality, **dict(zip(POINT_KEYS, map(float, r)))} for r in rows]


def model_point(images: list[np.ndarray], model: str, quality: float, device: str = "cpu") -> Point:
    """Mean bpp, PSNR, MS-SSIM and encode/decode seconds of ``model`` at ``quality``."""
    return mean_point(model_points(images, model, quality, device))


def model_points(images: list[np.ndarray], model: str, quality: float, device: str = "cpu") -> list[Point]:
    """Per image: bpp, PSNR, MS-SSIM and encode/decode seconds of ``model`` at ``quality``."""
    rows = []
    for ref in images:
        t0 = time.perf_counter()
        enc = codec.encode_image(LoadedImage(ref, 3, 8), model, quality, device, reconstruct=True)
        t1 = time.perf_counter()
        dec = codec.decode(enc.data, device)
        t2 = time.perf_counter()
        if not np.array_equal(dec.rgb, enc.rgb):
            raise NeuralCodecError(f"{model} q={quality}: decoded image differs from the encoder's reconstruction")
        rows.append((enc.bpp, psnr(ref, dec.rgb), ms_ssim(ref, dec.rgb), t1 - t0, t2 - t1))
    return _per_image(quality, rows)


def pillow_encode(ref: np.ndarray, codec_name: str, quality: int) -> bytes:
    """The file of ``ref`` ((H, W, 3) uint8) in a Pillow codec (``PILLOW``) at ``quality``."""
    fmt, _, extra = PILLOW[codec_name]
    buf = io.BytesIO()
    Image.fromarray(ref).save(buf, fmt, quality=quality, **extra)
    return buf.getvalue()


def pillow_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def pillow_point(images: list[np.ndarray], codec_name: str, quality: int) -> Point:
    return mean_point(pillow_points(images, codec_name, quality))


def pillow_points(images: list[np.ndarray], codec_name: str, quality: int, cache: dict | None = None) -> list[Point]:
    """Per image: bpp, PSNR, MS-SSIM and encode/decode seconds of a Pillow codec at ``quality``.

    ``cache`` (key -> point, e.g. kept in a JSON file between runs) skips what was measured before
    on the same pixels with the same Pillow and codec library; the seconds are then the stored ones.
    """
    points = []
    for ref in images:
        key = _cache_key(ref, codec_name, quality) if cache is not None else ""
        if key and key in cache:
            points.append(dict(cache[key]))
            continue
        t0 = time.perf_counter()
        data = pillow_encode(ref, codec_name, quality)
        t1 = time.perf_counter()
        dec = pillow_decode(data)
        t2 = time.perf_counter()
        row = (len(data) * 8 / (ref.shape[0] * ref.shape[1]), psnr(ref, dec), ms_ssim(ref, dec), t1 - t0, t2 - t1)
        points += _per_image(quality, [row])
        if key:
            cache[key] = points[-1]
    return points


def _cache_key(ref: np.ndarray, codec_name: str, quality: int) -> str:
    import hashlib

    import PIL
    from PIL import features

    lib = {"jpeg": "jpg"}.get(codec_name, codec_name)
    pixels = hashlib.sha256(repr(ref.shape).encode() + np.ascontiguousarray(ref).tobytes()).hexdigest()[:32]
    return f"{codec_name}:{quality}:{PILLOW[codec_name][2]}:Pillow {PIL.__version__}:{lib} {features.version(lib)}:{pixels}"


def ms_ssim_db(values: list[float]) -> list[float]:
    return [-10 * np.log10(max(1 - v, 1e-12)) for v in values]


def _col(points: list[Point], key: str) -> list[float]:
    return [p[key] for p in points]


def bd_rates(points: list[Point], reference: list[Point]) -> dict[str, float]:
    """BD-rate (%) of ``points`` against ``reference`` on PSNR-RGB and on MS-SSIM (dB)."""
    r_ref, r = _col(reference, "bpp"), _col(points, "bpp")
    return {
        "psnr": bd_rate(r_ref, _col(reference, "psnr"), r, _col(points, "psnr")),
        "ms_ssim": bd_rate(r_ref, ms_ssim_db(_col(reference, "ms_ssim")), r, ms_ssim_db(_col(points, "ms_ssim"))),
    }


def psnr_at_rates(points: list[Point], reference: list[Point]) -> list[float]:
    """The reference's PSNR at each point's rate (NaN outside its measured range)."""
    return [dist_at_rate(_col(reference, "bpp"), _col(reference, "psnr"), p["bpp"]) for p in points]


def compressai_json(name: str, points: list[Point], description: str) -> dict:
    """One curve in CompressAI's results format (``results/image/kodak/*.json`` of their repo)."""
    pts = sorted(points, key=lambda p: p["bpp"])
    keys = {"psnr": "psnr", "ms-ssim": "ms_ssim", "bpp": "bpp", "encoding_time": "encoding_time",
            "decoding_time": "decoding_time"}
    return {"name": name, "description": description, "results": {k: _col(pts, v) for k, v in keys.items()}}


def evaluate(
    images: list[np.ndarray], models: dict[str, list[float]], codecs: list[str], device: str = "cpu",
    progress: Progress | None = None, cache: dict | None = None,
) -> dict[str, list[Point]]:
    """RD points (means over the images) of each model at its qualities and of each Pillow codec at
    its settings (``cache``: see :func:`pillow_points`)."""
    per_image = evaluate_per_image(images, models, codecs, device, progress, cache)
    return {name: [mean_point(pts) for pts in rows] for name, rows in per_image.items()}


def evaluate_per_image(
    images: list[np.ndarray], models: dict[str, list[float]], codecs: list[str], device: str = "cpu",
    progress: Progress | None = None, cache: dict | None = None,
) -> dict[str, list[list[Point]]]:
    """As :func:`evaluate`, per image: ``result[curve][k][i]`` is the k-th setting's point on image i."""
    results: dict[str, list[list[Point]]] = {}
    for m, qualities in models.items():
        results[m] = []
        for q in qualities:
            if progress:
                progress(f"{m} q={q:g}")
            results[m].append(model_points(images, m, q, device))
    for c in codecs:
        results[c] = []
        for q in PILLOW[c][1]:
            if progress:
                progress(f"{c} q={q}")
            results[c].append(pillow_points(images, c, q, cache))
    return results


def image_curves(per_image: dict[str, list[list[Point]]], i: int) -> dict[str, list[Point]]:
    """The RD curves of image ``i`` alone, from :func:`evaluate_per_image`'s result."""
    return {name: [pts[i] for pts in rows] for name, rows in per_image.items()}


def plot(results: dict[str, list[Point]], ours: list[str], path: Path, title: str) -> None:
    """PSNR and MS-SSIM (dB) against bpp for every curve, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, pts in results.items():
        style = "o-" if name in ours else "s--"
        pts = sorted(pts, key=lambda p: p["bpp"])
        axes[0].plot(_col(pts, "bpp"), _col(pts, "psnr"), style, label=name, ms=4)
        axes[1].plot(_col(pts, "bpp"), ms_ssim_db(_col(pts, "ms_ssim")), style, label=name, ms=4)
    for ax, ylabel in zip(axes, ["PSNR-RGB (dB)", "MS-SSIM (dB)"]):
        ax.set_xlabel("bits per pixel (whole file)")
        ax.set_ylabel(ylabel)
        ax.set_xlim(0, 1.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
