#!/usr/bin/env python
"""BD-rate of one CompressAI-format results JSON against another (PSNR and MS-SSIM), e.g. our
sweep or eval_rd.py curves against each other or against CompressAI's published results.

    python scripts/bd_rate.py runs/sweep-msh-bf16/mean-scale-hyperprior-variable.json \\
        runs/sweep-msh/mean-scale-hyperprior-variable.json
"""

from __future__ import annotations

import argparse
import json
import sys

from neuralcodec import evaluation as ev


def points(path: str) -> list[dict]:
    try:
        r = json.loads(open(path).read())["results"]
        return [{"bpp": b, "psnr": p, "ms_ssim": m} for b, p, m in zip(r["bpp"], r["psnr"], r["ms-ssim"])]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        sys.exit(f"error: {path} is not a readable CompressAI results JSON ({exc})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("curve", help="results JSON to measure")
    p.add_argument("reference", help="results JSON it is measured against")
    args = p.parse_args()
    bd = ev.bd_rates(points(args.curve), points(args.reference))
    print(f"BD-rate of {args.curve} vs {args.reference}: {bd['psnr']:+.2f} % (PSNR), {bd['ms_ssim']:+.2f} % (MS-SSIM)")


if __name__ == "__main__":
    main()
