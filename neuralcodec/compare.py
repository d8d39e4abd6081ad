"""Side-by-side figures: our codec against JPEG, WebP and AVIF at the same file size (``ncodec compare``).

The figure is one PNG made with Pillow: a column for the whole image (with the crop and zoom
marked), then the original and each codec, every column with its label (codec, setting, bytes,
bpp, PSNR-RGB and MS-SSIM of the whole decoded image), a 1:1 crop and a 4:1 nearest-neighbour
zoom of the same region. Each baseline's quality is found by bisection so that its file is the
one closest in bytes to ours. The labels and numbers are also stored in the PNG's text chunks
(tEXt ``ncodec:compare``, JSON), so programs read them without parsing pixels.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from . import __version__
from .evaluation import pillow_decode, pillow_encode
from .metrics import ms_ssim, psnr

QUALITY_RANGE = {"jpeg": (1, 100), "webp": (0, 100), "avif": (0, 100)}  # Pillow's quality argument
ZOOM = 4
CROP = 256  # default side of the 1:1 crop (smaller images: their shorter side)
MARGIN, GAP, MIN_COLUMN = 12, 8, 180  # pixels; a column is at least MIN_COLUMN wide so its label fits
FONT_SIZE, NAME_SIZE, TITLE_SIZE = 15, 18, 17
LINE = round(FONT_SIZE * 1.35)  # height of a label or caption line
NAME_LINE = round(NAME_SIZE * 1.35)  # height of a label's first line (the codec's name)
LABEL_LINES = 5  # name, setting, size, PSNR, MS-SSIM
TITLE_LINES = 2
NAMES = {"jpeg": "JPEG", "webp": "WebP", "avif": "AVIF"}
TEXT_KEY = "ncodec:compare"


@dataclass
class Panel:
    """One column of the figure: a decoded image and what it cost."""

    codec: str  # "original", "ours", "JPEG", "WebP" or "AVIF"
    setting: str  # e.g. "quality 1.5", "Pillow quality 43"
    rgb: np.ndarray = field(repr=False)  # (H, W, 3) uint8, the decoded whole image
    bytes: int = 0
    bpp: float = 0.0
    psnr: float = math.inf
    ms_ssim: float = 1.0
    matched: bool = True  # False: the codec cannot come as close as its quality range allows (see note)
    note: str = ""


@dataclass
class Region:
    """The 1:1 crop (x, y, side) and, inside it, the region shown at 4:1."""

    x: int
    y: int
    size: int
    zoom_x: int
    zoom_y: int
    zoom_size: int


def match_size(ref: np.ndarray, codec: str, target_bytes: int) -> tuple[int, bytes, np.ndarray]:
    """The Pillow quality of ``codec`` whose file of ``ref`` is closest in bytes to ``target_bytes``,
    its file and decoded image: bisection over the integer quality (sizes grow with it, nearly
    monotonically), then the closer of the two qualities that bracket the target."""
    lo, hi = QUALITY_RANGE[codec]
    files: dict[int, bytes] = {}

    def size(q: int) -> int:
        if q not in files:
            files[q] = pillow_encode(ref, codec, q)
        return len(files[q])

    if size(lo) >= target_bytes:
        best = lo
    elif size(hi) <= target_bytes:
        best = hi
    else:  # invariant: size(lo) <= target < size(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if size(mid) <= target_bytes else (lo, mid)
        best = min((lo, hi), key=lambda q: (abs(size(q) - target_bytes), q))
    return best, files[best], pillow_decode(files[best])


def baseline_panel(ref: np.ndarray, codec: str, target_bytes: int, tolerance: float) -> Panel:
    """``codec`` matched to ``target_bytes``; ``matched`` is False (with a note) when its closest file
    is more than ``tolerance`` (relative) away, at the end of its quality range."""
    q, data, rgb = match_size(ref, codec, target_bytes)
    pixels = ref.shape[0] * ref.shape[1]
    panel = Panel(NAMES[codec], f"Pillow quality {q}", rgb, len(data), len(data) * 8 / pixels,
                  psnr(ref, rgb), ms_ssim(ref, rgb))
    if abs(len(data) - target_bytes) > tolerance * target_bytes:
        panel.matched = False
        side = "smallest" if len(data) > target_bytes else "largest"
        panel.note = f"{side} {NAMES[codec]} file"
    return panel


def detail_region(ref: np.ndarray, size: int, zoom: int = ZOOM) -> Region:
    """Where to look: the ``size // zoom`` square of highest luma variance (the zoom region) and the
    1:1 crop of side ``size`` centred on it, kept inside the image."""
    h, w = ref.shape[:2]
    size = min(size, h, w)
    z = max(1, size // zoom)
    grey = ref.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    s1 = np.pad(grey.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    s2 = np.pad((grey**2).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    box = lambda s: s[z:, z:] - s[:-z, z:] - s[z:, :-z] + s[:-z, :-z]  # noqa: E731  window sums, (h-z+1, w-z+1)
    var = box(s2) / z**2 - (box(s1) / z**2) ** 2
    zy, zx = np.unravel_index(int(np.argmax(var)), var.shape)
    x = int(np.clip(zx + z // 2 - size // 2, 0, w - size))
    y = int(np.clip(zy + z // 2 - size // 2, 0, h - size))
    return Region(x, y, size, int(zx), int(zy), z)


def region_at(ref: np.ndarray, x: int, y: int, size: int, zoom: int = ZOOM) -> Region:
    """The 1:1 crop with top-left corner (x, y) and its centre ``size // zoom`` square at 4:1;
    ValueError if (x, y) is outside the image (a crop reaching past the edge is moved inside)."""
    h, w = ref.shape[:2]
    if not (0 <= x < w and 0 <= y < h):
        raise ValueError(f"--crop {x},{y} is outside the {w}x{h} image")
    size = min(size, h, w)
    x, y = min(x, w - size), min(y, h - size)
    z = max(1, size // zoom)
    return Region(x, y, size, x + (size - z) // 2, y + (size - z) // 2, z)


def _fonts() -> tuple[ImageFont.ImageFont, ImageFont.ImageFont, ImageFont.ImageFont]:
    """Pillow's bundled scalable font (no system fonts needed): label, codec name, title."""
    return tuple(ImageFont.load_default(size=s) for s in (FONT_SIZE, NAME_SIZE, TITLE_SIZE))


def figure_size(crop: int, columns: int) -> tuple[int, int]:
    """(width, height) of a figure with ``columns`` columns and a 1:1 crop of side ``crop``."""
    col = max(crop, MIN_COLUMN)
    width = 2 * MARGIN + columns * col + (columns - 1) * GAP
    label = NAME_LINE + (LABEL_LINES - 1) * LINE
    height = 2 * MARGIN + TITLE_LINES * LINE + GAP + label + 2 * (GAP + LINE + crop)
    return width, height


def _fmt_ms_ssim(v: float) -> str:
    if math.isnan(v):
        return "MS-SSIM n/a (<161 px)"
    return f"MS-SSIM {v:.4f}" if v < 1 else "MS-SSIM 1 (lossless)"


def _label_lines(p: Panel) -> list[str]:
    if p.codec == "original":
        return [p.codec, p.setting, "", "", ""]
    quality = "PSNR inf (identical)" if math.isinf(p.psnr) else f"PSNR {p.psnr:.2f} dB"
    return [p.codec, p.setting, f"{p.bytes:,} B, {p.bpp:.3f} bpp", quality, _fmt_ms_ssim(p.ms_ssim)]


def render(ref: np.ndarray, panels: list[Panel], region: Region, title: list[str]) -> tuple[Image.Image, list[dict]]:
    """Draw the figure; returns it and, per panel, the boxes (left, top, right, bottom) of its crops."""
    label_font, name_font, title_font = _fonts()
    h, w = ref.shape[:2]
    s, z = region.size, region.zoom_size
    col = max(s, MIN_COLUMN)
    columns = len(panels) + 1
    fig = Image.new("RGB", figure_size(s, columns), "white")
    draw = ImageDraw.Draw(fig)
    ink, warn = (20, 20, 20), (200, 0, 0)

    y = MARGIN
    for line in title[:TITLE_LINES]:
        draw.text((MARGIN, y), line, fill=ink, font=title_font)
        y += LINE
    label_top = y + GAP
    line_y = [label_top] + [label_top + NAME_LINE + j * LINE for j in range(LABEL_LINES - 1)]
    row1 = label_top + NAME_LINE + (LABEL_LINES - 1) * LINE + GAP + LINE  # a caption line above each row of crops
    row2 = row1 + s + GAP + LINE
    grey = (90, 90, 90)

    # column 0: the whole image, with the crop (red) and the zoom region (yellow) marked
    for j, line in enumerate(["whole image", f"{w}x{h}", "red: 1:1 crop", f"yellow: {ZOOM}:1 zoom"]):
        draw.text((MARGIN, line_y[j]), line, fill=ink, font=name_font if j == 0 else label_font)
    scale = min(col / w, (row2 + s - row1) / h)
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    fig.paste(Image.fromarray(ref).resize((tw, th), Image.LANCZOS), (MARGIN, row1))
    for (bx, by, bs), colour in (((region.x, region.y, s), (255, 0, 0)), ((region.zoom_x, region.zoom_y, z), (255, 220, 0))):
        l, t = MARGIN + bx * scale, row1 + by * scale
        draw.rectangle((l, t, l + max(bs * scale, 3), t + max(bs * scale, 3)), outline=colour, width=2)

    first = MARGIN + col + GAP
    draw.text((first, row1 - LINE), f"1:1 crop, {s}x{s} at ({region.x}, {region.y})", fill=grey, font=label_font)
    draw.text((first, row2 - LINE), f"{ZOOM}:1 nearest-neighbour zoom of {z}x{z} at ({region.zoom_x}, {region.zoom_y})",
              fill=grey, font=label_font)
    boxes = []
    for i, p in enumerate(panels):
        left = first + i * (col + GAP)
        for j, line in enumerate(_label_lines(p)):
            colour = warn if (j == 2 and not p.matched) else ink
            draw.text((left, line_y[j]), line, fill=colour, font=name_font if j == 0 else label_font)
        if p.note:  # an unmatched size is said in red next to the name
            draw.text((left + draw.textlength(p.codec, font=name_font) + 8, label_top + 3), p.note, fill=warn,
                      font=label_font)
        im = Image.fromarray(p.rgb)
        one = im.crop((region.x, region.y, region.x + s, region.y + s))
        zoomed = im.crop((region.zoom_x, region.zoom_y, region.zoom_x + z, region.zoom_y + z)).resize(
            (z * ZOOM, z * ZOOM), Image.NEAREST)
        px = left + (col - s) // 2
        fig.paste(one, (px, row1))
        zx = left + (col - z * ZOOM) // 2
        fig.paste(zoomed, (zx, row2))
        boxes.append({"box_1x": [px, row1, px + s, row1 + s], "box_zoom": [zx, row2, zx + z * ZOOM, row2 + z * ZOOM]})
    return fig, boxes


def _json_number(v: float) -> float | None:
    return None if math.isnan(v) or math.isinf(v) else round(float(v), 6)


def text_chunks(name: str, panels: list[Panel], region: Region, boxes: list[dict], extra: dict) -> dict[str, str]:
    """The PNG text chunks: ``ncodec:compare`` (JSON: image name, ``extra``, region, per panel its
    label lines, numbers and crop boxes) and one readable ``ncodec:panel:<codec>`` line per panel."""
    records = []
    for p, b in zip(panels, boxes):
        rec = {f.name: getattr(p, f.name) for f in fields(p) if f.name != "rgb"}
        rec.update(psnr=_json_number(p.psnr), ms_ssim=_json_number(p.ms_ssim), bpp=_json_number(p.bpp),
                   label=_label_lines(p), **b)
        records.append(rec)
    meta = {"image": name, **extra, "zoom": ZOOM, "region": asdict(region), "panels": records}
    chunks = {"Title": f"ncodec compare: {name}", "Software": f"ncodec {__version__}", TEXT_KEY: json.dumps(meta)}
    for p in panels:
        chunks[f"ncodec:panel:{p.codec}"] = ", ".join(_label_lines(p))
    return chunks


def compare(
    ref: np.ndarray, name: str, model: str, quality: float | None = None, bpp: float | None = None,
    device: str = "cpu", region: Region | None = None, crop_size: int = CROP, tolerance: float = 0.05,
) -> tuple[Image.Image, dict[str, str]]:
    """The comparison figure of ``ref`` ((H, W, 3) uint8) and its PNG text chunks.

    Ours is coded at ``quality`` (None: the model's default) or at the highest quality within
    ``bpp``, without metadata (the baselines carry none either); JPEG, WebP and AVIF are each
    matched to our file's bytes (:func:`match_size`), flagged when more than ``tolerance`` away.
    ``region`` is where the crops are taken (default: :func:`detail_region` with ``crop_size``)."""
    from . import codec
    from .io.images import LoadedImage

    img = LoadedImage(ref, 3, 8)
    if bpp is not None:
        enc = codec.encode_to_target(img, model, bpp=bpp, device=device, metadata="none")
    else:
        enc = codec.encode_image(img, model, quality, device, reconstruct=True, metadata="none")
    target = len(enc.data)
    ours = Panel("ours", f"quality {enc.header.quality:g}", enc.rgb, target, enc.bpp,
                 psnr(ref, enc.rgb), ms_ssim(ref, enc.rgb))
    original = Panel("original", "the reference image", ref, 0, math.nan)
    panels = [original, ours] + [baseline_panel(ref, c, target, tolerance) for c in ("jpeg", "webp", "avif")]
    region = region or detail_region(ref, crop_size)
    h, w = ref.shape[:2]
    title = [f"{name} ({w}x{h}); ours: {enc.header.model_id} at quality {enc.header.quality:g}",
             f"Baselines at our file size ({target:,} B, {enc.bpp:.3f} bpp), quality by bisection. "
             "PSNR-RGB, MS-SSIM: whole image."]
    fig, boxes = render(ref, panels, region, title)
    extra = {"model": enc.header.model_id, "quality": enc.header.quality, "target_bytes": target}
    return fig, text_chunks(name, panels, region, boxes, extra)


def save_png(fig: Image.Image, chunks: dict[str, str], path: str | Path) -> None:
    """Write the figure atomically as PNG with ``chunks`` as tEXt."""
    from .io.files import write_atomic

    info = PngImagePlugin.PngInfo()
    for k, v in chunks.items():
        info.add_text(k, v)
    write_atomic(path, lambda tmp: fig.save(tmp, "PNG", pnginfo=info, optimize=True))


def read_chunks(path: str | Path) -> dict:
    """The ``ncodec:compare`` record of a figure written by :func:`save_png`."""
    with Image.open(path) as im:
        return json.loads(im.text[TEXT_KEY])


def _finite(obj):
    """``obj`` with every NaN or infinite float replaced by None (strict JSON)."""
    if isinstance(obj, float):
        return _json_number(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _pct(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:+.1f} %"


def write_report(
    folder: Path, source: str, names: list[str], images: list[np.ndarray], per_image: dict[str, list[list[dict]]],
    results: dict[str, list[dict]], bd: dict[str, dict[str, dict[str, float]]], model: str, reference: str,
    device: str = "cpu",
) -> Path:
    """Write an ``ncodec eval`` report into ``folder`` and return its ``index.md``.

    ``per_image[curve][k][i]`` are the points of :func:`neuralcodec.evaluation.evaluate_per_image`,
    ``results`` their means and ``bd`` the mean curves' BD-rates. Images are ranked by ``model``'s
    own BD-rate (PSNR-RGB) against ``reference`` on each image; the best and the worst get a
    comparison figure at the model's default quality. Files: ``index.md``, ``rd.png``,
    ``per_image.json``, ``compare_best.png`` and ``compare_worst.png`` (only ``compare_best.png``
    when a single image can be ranked)."""
    from . import evaluation as ev
    from .io.files import write_atomic

    folder.mkdir(parents=True, exist_ok=True)
    ev.plot(results, list(bd), folder / "rd.png", f"{source} ({len(images)} images)")
    rows = []
    for i, name in enumerate(names):
        curves = ev.image_curves(per_image, i)
        rows.append({"image": name, "width": images[i].shape[1], "height": images[i].shape[0],
                     "bd_rate": {m: {c: ev.bd_rates(curves[m], curves[c]) for c in bd[m]} for m in bd},
                     "curves": curves})
    ranked = sorted((r for r in rows if not math.isnan(r["bd_rate"][model][reference]["psnr"])),
                    key=lambda r: r["bd_rate"][model][reference]["psnr"])
    summary = {"source": source, "ranked_by": f"BD-rate (PSNR-RGB) of {model} vs {reference} on each image, "
                                              "lower is better for us", "images": rows}
    write_atomic(folder / "per_image.json", json.dumps(_finite(summary), indent=1, allow_nan=False).encode())

    figures = []
    picks = [("best", ranked[0]), ("worst", ranked[-1])] if len(ranked) > 1 else [("best", r) for r in ranked]
    for which, row in picks:
        fig, chunks = compare(images[names.index(row["image"])], row["image"], model, device=device)
        save_png(fig, chunks, folder / f"compare_{which}.png")
        figures.append((which, row))

    lines = [f"# ncodec eval: {source}", "",
             f"{len(images)} images; bpp of whole files, PSNR-RGB and MS-SSIM of decoded images. "
             f"Per-image points: [per_image.json](per_image.json).", "",
             "## Rate-distortion (means over the images)", "", "![RD curves](rd.png)", "",
             "| model | vs | BD-rate (PSNR) | BD-rate (MS-SSIM) |", "|---|---|---|---|"]
    lines += [f"| {m} | {c} | {_pct(v['psnr'])} | {_pct(v['ms_ssim'])} |" for m, cs in bd.items() for c, v in cs.items()]
    lines += ["", f"## Per image: BD-rate (PSNR) of {model} vs {reference}", "",
              "Negative: our files are smaller at equal PSNR. Best first; n/a where the curves do not overlap.", "",
              "| image | BD-rate |", "|---|---|"]
    unranked = [r for r in rows if all(r is not x for x in ranked)]
    lines += [f"| {r['image']} | {_pct(r['bd_rate'][model][reference]['psnr'])} |" for r in ranked + unranked]
    for which, row in figures:
        lines += ["", f"## {which.capitalize()} image: {row['image']} "
                      f"({_pct(row['bd_rate'][model][reference]['psnr'])} vs {reference})", "",
                  f"{model} at its default quality; JPEG, WebP and AVIF at the same file size.", "",
                  f"![{which}](compare_{which}.png)"]
    if not figures:
        lines += ["", f"No image has overlapping {model} and {reference} curves: no comparison figures."]
    index = folder / "index.md"
    write_atomic(index, ("\n".join(lines) + "\n").encode())
    return index
