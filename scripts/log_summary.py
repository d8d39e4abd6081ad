#!/usr/bin/env python
"""Training trajectory from log.jsonl files: mean loss, bpp and PSNR (on the training crops,
over all sampled qualities) per window of steps, and any Kodak probes.

    python scripts/log_summary.py runs/ft-msh runs/ft-cb --window 500
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders (holding log.jsonl)")
    p.add_argument("--window", type=int, default=500)
    args = p.parse_args()
    print("| run | steps | loss | bpp | PSNR dB | steps/s |\n|---|---|---|---|---|---|")
    for run in args.runs:
        records = [json.loads(x) for x in (Path(run) / "log.jsonl").read_text().splitlines() if x.strip()]
        steps = [r for r in records if "loss" in r]
        last = max(r["step"] for r in steps)
        for start in range(0, last, args.window):
            sel = [r for r in steps if start < r["step"] <= start + args.window]
            if sel:
                mean = {k: sum(r[k] for r in sel) / len(sel) for k in ("loss", "bpp", "psnr")}
                # "sec" restarts at 0 when a run resumes: count only increasing stretches
                pairs = [(b["step"] - a["step"], b["sec"] - a["sec"]) for a, b in zip(sel, sel[1:]) if b["sec"] > a["sec"]]
                rate = sum(p[0] for p in pairs) / sum(p[1] for p in pairs) if pairs else float("nan")
                print(f"| {run} | {start + 1}–{start + args.window} | {mean['loss']:.4f} | {mean['bpp']:.4f} "
                      f"| {mean['psnr']:.2f} | {rate:.2f} |")
        for r in records:
            if "kodak" in r:
                pts = ", ".join(f"q{x['quality']:g}: {x['bpp']:.3f} bpp {x['psnr']:.2f} dB" for x in r["kodak"])
                print(f"| {run} Kodak probe | {r['step']} | {pts} | | | |")


if __name__ == "__main__":
    main()
