#!/usr/bin/env python
"""Turn a training checkpoint into shipped weights: weights/<id>.safetensors + manifest entry.

    python scripts/export_weights.py runs/msh/checkpoint.pt
    python scripts/eval_rd.py --update-manifest      # then measure and record its Kodak RD
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from neuralcodec.models.registry import get_spec
from neuralcodec.models.weights import export_weights, load_state
from neuralcodec.train.loop import DEFAULT_LAMBDAS, MS_SSIM_LAMBDAS


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--out", default=None, help="weights folder (default: weights/)")
    p.add_argument("--quality-range", type=float, nargs=2, metavar=("LO", "HI"),
                   help="qualities the weights are shipped for (those that measured better than JPEG)")
    p.add_argument("--default-quality", type=float)
    args = p.parse_args()
    ck = torch.load(args.checkpoint, weights_only=True, map_location="cpu")
    cfg = ck["config"]
    model = get_spec(cfg["model"]).build()
    load_state(model, ck["model"])
    distortion = cfg.get("distortion", "mse")
    log = Path(args.checkpoint).parent / "log.jsonl"
    seconds = None
    if log.exists():
        recs = [r for r in map(json.loads, filter(str.strip, log.read_text().splitlines())) if "sec" in r]
        seconds = sum(r["sec"] for r, nxt in zip(recs, recs[1:] + [None]) if nxt is None or nxt["sec"] < r["sec"])
    info = {
        "training": {
            "data": cfg["data"], "steps": ck["step"], "batch": cfg["batch"], "crop": cfg["crop"],
            "lr": cfg["lr"], "distortion": distortion,
            "lambdas": cfg.get("lambdas") or (DEFAULT_LAMBDAS if distortion == "mse" else MS_SSIM_LAMBDAS),
            "init": cfg.get("init", ""),
            "hardware": "2 CPU cores (AMD EPYC), torch 2.14.1", "wall_seconds": seconds,
            "command": "python scripts/train.py " + " ".join(
                f"--{k} {v}" for k, v in cfg.items() if k in ("model", "out", "steps", "lr", "fresh_lr", "init") and v not in ("", 0, 0.0)),
        }
    }
    if args.quality_range:
        info["quality_range"] = args.quality_range
    if args.default_quality is not None:
        info["default_quality"] = args.default_quality
    path = export_weights(model, cfg["model"], info, Path(args.out) if args.out else None)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
