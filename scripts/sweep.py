#!/usr/bin/env python
"""Rate-distortion sweep: fixed-rate training at several lambdas, or evaluation of a
variable-rate model at several qualities, each written as one CompressAI-format results JSON.

Fixed-rate runs train the same architecture at one lambda each (every sample at the top
quality, so the gain units stay fixed) and are resumable like scripts/train.py. Comparing them
with the variable-rate model at equal steps gives the cost of covering the whole range with one
weights file:

    python scripts/sweep.py --model mean-scale-hyperprior --lambdas 0.0035 0.013 0.0483 \\
        --steps 2500 --init weights/mean-scale-hyperprior.safetensors --out runs/sweep-msh
    python scripts/sweep.py --model mean-scale-hyperprior --qualities 0 0.5 1 --out runs/sweep-msh  # shipped weights
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from neuralcodec import evaluation as ev
from neuralcodec._malloc import tune_malloc
from neuralcodec.models.registry import get_spec
from neuralcodec.models.weights import export_weights, load_model, load_state
from neuralcodec.train.loop import TrainConfig, train


def evaluate_in(folder: Path | None, model: str, qualities: list[float], images, device: str) -> list[dict]:
    """Points of ``model`` with the weights installed in ``folder`` (None: the shipped ones)."""
    if folder is not None:
        os.environ["NEURALCODEC_WEIGHTS"] = str(folder)
    else:
        os.environ.pop("NEURALCODEC_WEIGHTS", None)
    load_model.cache_clear()
    return [ev.model_point(images, model, q, device) for q in qualities]


def main() -> None:
    tune_malloc()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--lambdas", type=float, nargs="*", default=[], help="fixed-rate runs, one per lambda")
    p.add_argument("--qualities", type=float, nargs="*", default=[], help="evaluate the shipped weights at these")
    p.add_argument("--steps", type=int, default=2500)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--init", default="", help="warm start of every fixed-rate run")
    p.add_argument("--data", default="../shared/data/train")
    p.add_argument("--eval-data", default="../shared/data/kodak")
    p.add_argument("--limit", type=int, default=0, help="evaluate on the first N images only")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images = ev.load_folder(args.eval_data, args.limit)
    levels = get_spec(args.model).build().levels

    if args.qualities:
        pts = evaluate_in(None, args.model, args.qualities, images, args.device)
        path = out / f"{args.model}-variable.json"
        path.write_text(json.dumps(ev.compressai_json(args.model, pts, "variable rate, shipped weights"), indent=2))
        print(f"wrote {path}")

    fixed = []
    for lam in args.lambdas:
        run = out / f"lambda-{lam:g}"
        cfg = TrainConfig(model=args.model, data=args.data, out=str(run), steps=args.steps, lr=args.lr,
                          lambdas=[lam] * levels, fixed_quality=float(levels), init=args.init)
        ck = torch.load(train(cfg), weights_only=False)
        model = get_spec(args.model).build()
        load_state(model, ck["model"])
        export_weights(model, args.model, {"training": {"lambda": lam, "steps": ck["step"]}}, run / "weights")
        pt = evaluate_in(run / "weights", args.model, [float(levels)], images, args.device)[0]
        pt["lambda"] = lam
        fixed.append(pt)
        print(f"lambda {lam:g}: {pt['bpp']:.4f} bpp, {pt['psnr']:.2f} dB")
    if fixed:
        path = out / f"{args.model}-fixed.json"
        path.write_text(json.dumps(ev.compressai_json(args.model, fixed, f"fixed rate, {args.steps} steps"), indent=2))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
