#!/usr/bin/env python
"""Rate-distortion on a folder of images: our models against Pillow's JPEG, WebP and AVIF.

Every point is a real file: bpp counts all bytes of the file (our header included), PSNR-RGB and
MS-SSIM are measured on the decoded 8-bit images. Our files are also checked to decode to exactly
the encoder's reconstruction.

    python scripts/eval_rd.py                       # Kodak, all models with weights, all codecs
    python scripts/eval_rd.py --limit 4 --out out/rd_quick
    python scripts/eval_rd.py --update-manifest     # store our Kodak RD in weights/manifest.json
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

import neuralcodec as nc
from neuralcodec._malloc import tune_malloc
from neuralcodec.metrics import bd_rate, dist_at_rate, ms_ssim, psnr
from neuralcodec.models import REGISTRY
from neuralcodec.models.weights import read_manifest, weights_dir
from neuralcodec.io.files import list_images

PILLOW = {
    "jpeg": ("JPEG", [1, 3, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95], {}),
    "webp": ("WEBP", [0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95], {"method": 6}),
    "avif": ("AVIF", [5, 10, 20, 30, 40, 50, 60, 70, 80, 90], {}),
}


def pillow_point(images: list[np.ndarray], fmt: str, q: int, extra: dict) -> dict:
    rows = []
    for ref in images:
        buf = io.BytesIO()
        Image.fromarray(ref).save(buf, fmt, quality=q, **extra)
        dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        rows.append((buf.tell() * 8 / (ref.shape[0] * ref.shape[1]), psnr(ref, dec), ms_ssim(ref, dec)))
    return summarize(q, rows)


def model_point(images: list[np.ndarray], model: str, q: float, device: str) -> dict:
    rows = []
    loaded = [nc.io.images.LoadedImage(im, 3, 8) for im in images]
    for ref, enc in zip(images, nc.encode_images(loaded, model, q, device, batch=1, reconstruct=True)):
        dec = nc.decode(enc.data, device)
        if not np.array_equal(dec.rgb, enc.rgb):
            sys.exit(f"{model} q={q}: decoded image differs from the encoder's reconstruction")
        rows.append((enc.bpp, psnr(ref, dec.rgb), ms_ssim(ref, dec.rgb)))
    return summarize(q, rows)


def summarize(q, rows) -> dict:
    a = np.array(rows)
    return {"quality": q, "bpp": float(a[:, 0].mean()), "psnr": float(a[:, 1].mean()), "ms_ssim": float(a[:, 2].mean())}


def curve(points: list[dict], key: str) -> list[float]:
    return [p[key] for p in points]


def plot(results: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, pts in results.items():
        style = "o-" if name in REGISTRY else "s--"
        axes[0].plot(curve(pts, "bpp"), curve(pts, "psnr"), style, label=name, ms=4)
        axes[1].plot(curve(pts, "bpp"), [-10 * np.log10(1 - s) for s in curve(pts, "ms_ssim")], style, label=name, ms=4)
    for ax, ylabel in zip(axes, ["PSNR-RGB (dB)", "MS-SSIM (dB)"]):
        ax.set_xlabel("bits per pixel (whole file)")
        ax.set_ylabel(ylabel)
        ax.set_xlim(0, 2.0)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    tune_malloc()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/kodak")
    p.add_argument("--models", nargs="*", help="model ids (default: all with installed weights)")
    p.add_argument("--qualities", type=float, nargs="+", default=[1, 2, 3, 4, 5, 6])
    p.add_argument("--codecs", nargs="*", default=list(PILLOW), choices=list(PILLOW))
    p.add_argument("--limit", type=int, default=0, help="use only the first N images")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="out/rd")
    p.add_argument("--update-manifest", action="store_true", help="write our models' points into weights/manifest.json")
    args = p.parse_args()

    paths = list_images(args.data)[: args.limit or None]
    if not paths:
        sys.exit(f"no images in {args.data}")
    images = [np.asarray(Image.open(pth).convert("RGB")) for pth in paths]
    manifest = read_manifest()
    models = args.models if args.models is not None else [m for m in REGISTRY if m in manifest["models"]]
    results: dict[str, list[dict]] = {}
    for m in models:
        results[m] = [model_point(images, m, q, args.device) for q in tqdm(args.qualities, desc=m)]
    for c in args.codecs:
        fmt, qs, extra = PILLOW[c]
        results[c] = [pillow_point(images, fmt, q, extra) for q in tqdm(qs, desc=c)]

    summary = {}
    for m in models:
        pts = results[m]
        summary[m] = {}
        for c in args.codecs:
            ref = results[c]
            summary[m][f"bd_rate_vs_{c}"] = bd_rate(curve(ref, "bpp"), curve(ref, "psnr"), curve(pts, "bpp"), curve(pts, "psnr"))
            for pt in pts:
                pt[f"{c}_psnr_at_bpp"] = dist_at_rate(curve(ref, "bpp"), curve(ref, "psnr"), pt["bpp"])

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"data": str(args.data), "images": len(paths), "results": results, "summary": summary}
    (out / "rd.json").write_text(json.dumps(record, indent=1))
    plot(results, out / "rd.png", f"Rate-distortion on {Path(args.data).name} ({len(paths)} images)")

    for name, pts in results.items():
        print(f"\n{name}")
        for pt in pts:
            extra = "  ".join(f"{c} {pt[f'{c}_psnr_at_bpp']:.2f}" for c in args.codecs if f"{c}_psnr_at_bpp" in pt)
            print(f"  q={pt['quality']:<5} {pt['bpp']:.4f} bpp  {pt['psnr']:.2f} dB  MS-SSIM {pt['ms_ssim']:.4f}  {extra}")
    for m, s in summary.items():
        print(f"\n{m} BD-rate (PSNR): " + ", ".join(f"{k[11:]} {v:+.1f}%" for k, v in s.items()))
    print(f"\nwrote {out / 'rd.json'} and {out / 'rd.png'}")

    if args.update_manifest:
        folder = weights_dir()
        for m in models:
            manifest["models"][m]["kodak_rd"] = [
                {k: (round(v, 4) if isinstance(v, float) else v) for k, v in pt.items()} for pt in results[m]
            ]
            manifest["models"][m]["kodak_bd_rate"] = {k: round(v, 2) for k, v in summary[m].items()}
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        print(f"updated {folder / 'manifest.json'}")


if __name__ == "__main__":
    main()
