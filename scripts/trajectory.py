#!/usr/bin/env python
"""A model's training trajectory from ``weights/manifest.json``: every installed version with its
training steps in all (following each version's warm start back to the first), the wall time its
lineage recorded, and the Kodak figures ``eval_rd.py --update-manifest`` stored for it.

    python scripts/trajectory.py --model elic-context-hyperprior      # a markdown table
"""

from __future__ import annotations

import argparse
import re

from neuralcodec.models.manifest import versions


def total_steps(entry: dict, by_file: dict[str, dict], by_version: dict[int, dict]) -> int:
    """Steps since training began: this version's, plus those of the version it started from."""
    t = entry["training"]
    init = t.get("init", "")
    if ref := re.match(r"[\w-]+@(\d+) ", init):  # a lineage-aware export names the version
        return t["steps"] + total_steps(by_version[int(ref.group(1))], by_file, by_version)
    if start := by_file.get(init.rsplit("/", 1)[-1].split(" ")[0]):
        return t["steps"] + total_steps(start, by_file, by_version)
    return t["steps"] + t.get("warm_start", {}).get("steps", 0)  # the first version


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="elic-context-hyperprior")
    args = p.parse_args()
    vs = versions(args.model)
    if not vs:
        raise SystemExit(f"trajectory: no installed versions of '{args.model}'")
    by_file = {e["file"]: e for e in vs}
    by_version = {e["version"]: e for e in vs}
    print("| version | steps in all | lineage wall h | BD-rate vs WebP (PSNR / MS-SSIM) | vs AVIF (PSNR) "
          "| vs JPEG (PSNR) | weakest margin over WebP from 0.25 bpp |")
    print("|---|---|---|---|---|---|---|")
    for e in vs:
        bd = e.get("kodak_bd_rate", {})
        t = e["training"]
        lineage = re.match(r"[\w-]+@\d+ ", t.get("init", ""))  # only then does wall_seconds cover every run
        hours = f"{t['wall_seconds'] / 3600:.1f} since @{lineage.group(0).split('@')[1].strip()}" if lineage else "–"
        margins = [(r["psnr"] - r["webp_psnr_at_bpp"], r["bpp"]) for r in e.get("kodak_rd", [])
                   if r["bpp"] >= 0.25 and r.get("webp_psnr_at_bpp") is not None]
        weakest = "{:+.2f} dB at {:.2f} bpp".format(*min(margins)) if margins else "–"
        fmt = lambda k, m: f"{bd[k][m]:+.2f} %" if k in bd else "–"  # noqa: E731
        print(f"| `@{e['version']}` | {total_steps(e, by_file, by_version):,} | {hours} | "
              f"{fmt('vs_webp', 'psnr')} / {fmt('vs_webp', 'ms_ssim')} | {fmt('vs_avif', 'psnr')} | "
              f"{fmt('vs_jpeg', 'psnr')} | {weakest} |")


if __name__ == "__main__":
    main()
