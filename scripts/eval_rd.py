#!/usr/bin/env python
"""Rate-distortion on a folder of images: our models against Pillow's JPEG, WebP and AVIF,
measured on real files (see neuralcodec/evaluation.py). Pillow's points are kept in
--baseline-cache between runs, keyed by the image's pixels, the setting and the library versions.

Writes OUT/rd.json (every point and BD-rate), OUT/<curve>.json in CompressAI's results format,
and OUT/rd.png (PSNR and MS-SSIM curves).

    python scripts/eval_rd.py                       # Kodak, all models with weights, all codecs
    python scripts/eval_rd.py --limit 4 --out out/rd_quick
    python scripts/eval_rd.py --update-manifest     # store our Kodak RD in weights/manifest.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from tqdm import tqdm

from neuralcodec import evaluation as ev
from neuralcodec._malloc import tune_malloc
from neuralcodec.models import REGISTRY
from neuralcodec.models.manifest import entry_of
from neuralcodec.models.weights import load_model, read_manifest, weights_dir


def main() -> None:
    tune_malloc()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/kodak")
    p.add_argument("--models", nargs="*", help="model ids (default: all with installed weights)")
    p.add_argument("--qualities", type=float, nargs="+", help="default: 6 points over each model's shipped range")
    p.add_argument("--codecs", nargs="*", default=list(ev.PILLOW), choices=list(ev.PILLOW))
    p.add_argument("--baseline", default="mean-scale-hyperprior", help="also report BD-rates against this model")
    p.add_argument("--limit", type=int, default=0, help="use only the first N images")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="out/rd")
    p.add_argument("--baseline-cache", default="out/pillow_points.json",
                   help="JSON file of Pillow points kept between runs (keyed by pixels, setting and library "
                        "versions); '' to measure every baseline again")
    p.add_argument("--update-manifest", action="store_true", help="write our models' points into weights/manifest.json")
    args = p.parse_args()

    images = ev.load_folder(args.data, args.limit)
    manifest = read_manifest()
    ids = args.models if args.models is not None else [m for m in REGISTRY if m in manifest["models"]]  # id or id@N
    models = {m: args.qualities or ev.spread(load_model(m).quality_range, 6) for m in ids}
    bar = tqdm(total=sum(map(len, models.values())) + sum(len(ev.PILLOW[c][1]) for c in args.codecs), unit="point")
    cache_path = Path(args.baseline_cache) if args.baseline_cache else None
    cache = None
    if cache_path:
        try:
            cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
        except (OSError, ValueError) as e:  # only a cache: measure again
            print(f"warning: ignoring unreadable {cache_path} ({e}); the baselines are measured again")
            cache = {}
    results = ev.evaluate(images, models, args.codecs, args.device, progress=lambda s: (bar.set_description(s), bar.update()),
                          cache=cache)
    if cache_path:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache))
        tmp.replace(cache_path)
    bar.close()

    refs = list(args.codecs) + ([args.baseline] if args.baseline in results else [])
    summary = {m: {f"vs_{r}": ev.bd_rates(results[m], results[r]) for r in refs if r != m} for m in ids}
    for m in ids:
        for c in args.codecs:
            for pt, d in zip(results[m], ev.psnr_at_rates(results[m], results[c])):
                pt[f"{c}_psnr_at_bpp"] = d

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rd.json").write_text(json.dumps({"data": args.data, "images": len(images), "results": results,
                                             "bd_rate": summary}, indent=1))
    for name, pts in results.items():
        desc = f"neuralcodec {name}, {len(images)} images of {args.data}" if name in ids else f"Pillow {name}"
        (out / f"{name}.json").write_text(json.dumps(ev.compressai_json(name, pts, desc), indent=2))
    ev.plot(results, ids, out / "rd.png", f"Rate-distortion on {Path(args.data).name} ({len(images)} images)")

    for name, pts in results.items():
        print(f"\n{name}")
        for pt in pts:
            extra = "  ".join(f"{c} {pt[f'{c}_psnr_at_bpp']:.2f}" for c in args.codecs if f"{c}_psnr_at_bpp" in pt)
            print(f"  q={pt['quality']:<6g} {pt['bpp']:.4f} bpp  {pt['psnr']:.2f} dB  MS-SSIM {pt['ms_ssim']:.4f}  "
                  f"enc {pt['encoding_time']:.3f}s dec {pt['decoding_time']:.3f}s  {extra}")
    for m, s in summary.items():
        print(f"\n{m} BD-rate  " + "  ".join(f"{k[3:]}: PSNR {v['psnr']:+.1f}% MS-SSIM {v['ms_ssim']:+.1f}%" for k, v in s.items()))
    print(f"\nwrote {out}/rd.json, {out}/<curve>.json (CompressAI format) and {out}/rd.png")

    if args.update_manifest:
        folder = weights_dir()
        manifest = read_manifest(folder)
        r4 = lambda v: (None if math.isnan(v) else round(v, 4)) if isinstance(v, float) else v  # noqa: E731
        for m in ids:  # m may name a version (id@N): its own entry is updated
            entry_of(manifest, m)["kodak_rd"] = [{k: r4(v) for k, v in pt.items()} for pt in results[m]]
            entry_of(manifest, m)["kodak_bd_rate"] = {
                k: {d: round(v, 2) for d, v in s.items()} for k, s in summary[m].items()}
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        print(f"updated {folder / 'manifest.json'}")


if __name__ == "__main__":
    main()
