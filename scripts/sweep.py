#!/usr/bin/env python
"""Rate-distortion sweep: fixed-rate training at several lambdas, or evaluation of a
variable-rate model at several qualities, each written as one CompressAI-format results JSON.

Fixed-rate runs train the same architecture at one lambda each (every sample at the quality the
variable-rate model trained for that lambda, so one gain vector is used) and are resumable like
scripts/train.py. Comparing them with the variable-rate model at equal steps gives the cost of
covering the whole range with one weights file:

    python scripts/sweep.py --model mean-scale-hyperprior --lambdas 0.0018 0.0035 0.0067 \\
        --variable --qualities 1 1.5 2 2.5 3 --steps 2500 --init weights/mean-scale-hyperprior.safetensors \\
        --out runs/sweep-msh
    python scripts/sweep.py --model mean-scale-hyperprior --qualities 0 0.5 1 --out runs/sweep-msh  # shipped weights

``--variable`` trains the variable-rate model for the same steps from the same start (all
qualities, the default lambdas) and evaluates it at ``--qualities``; without it ``--qualities``
evaluates the shipped weights. ``--precision bf16`` trains every run under bf16 autocast.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch

from neuralcodec import evaluation as ev
from neuralcodec._malloc import tune_malloc
from neuralcodec.models.registry import get_spec
from neuralcodec.models.weights import export_weights, load_model, load_state
from neuralcodec.train.loop import DEFAULT_LAMBDAS, TrainConfig, read_checkpoint, train


def evaluate_in(folder: Path | None, model: str, qualities: list[float], images, device: str) -> list[dict]:
    """Points of ``model`` with the weights installed in ``folder`` (None: the shipped ones)."""
    if folder is not None:
        os.environ["NEURALCODEC_WEIGHTS"] = str(folder)
    else:
        os.environ.pop("NEURALCODEC_WEIGHTS", None)
    load_model.cache_clear()
    return [ev.model_point(images, model, q, device) for q in qualities]


def train_and_export(args: argparse.Namespace, run: Path, extra: dict) -> Path:
    """Train one run (resumable) and export its weights to ``run/weights``."""
    cfg = TrainConfig(model=args.model, data=args.data, out=str(run), steps=args.steps, lr=args.lr,
                      init=args.init, precision=args.precision, **extra)
    ck = read_checkpoint(train(cfg))
    model = get_spec(args.model).build()
    load_state(model, ck["model"])
    export_weights(model, args.model, {"training": {**extra, "steps": ck["step"], "precision": args.precision}},
                   run / "weights")
    return run / "weights"


def main() -> None:
    tune_malloc()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--lambdas", type=float, nargs="*", default=[], help="fixed-rate runs, one per lambda")
    p.add_argument("--qualities", type=float, nargs="*", default=[], help="evaluate the variable-rate model at these")
    p.add_argument("--variable", action="store_true", help="train the variable-rate model too (else: shipped weights)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--steps", type=int, default=2500)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--init", default="", help="warm start of every fixed-rate run")
    p.add_argument("--data", default="../shared/data/train")
    p.add_argument("--eval-data", default="../shared/data/kodak")
    p.add_argument("--limit", type=int, default=0, help="evaluate on the first N images only")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images = ev.load_folder(args.eval_data, args.limit)
    levels = get_spec(args.model).build().levels

    variable: list[dict] = []
    if args.qualities:
        folder, what = None, "variable rate, shipped weights"
        if args.variable:
            folder = train_and_export(args, out / "variable", {})
            what = f"variable rate, {args.steps} steps ({args.precision})"
        variable = evaluate_in(folder, args.model, args.qualities, images, args.device)
        path = out / f"{args.model}-variable.json"
        path.write_text(json.dumps(ev.compressai_json(args.model, variable, what), indent=2))
        print(f"wrote {path}")

    fixed = []
    for lam in args.lambdas:
        # Start at the operating point the variable-rate model trained for this lambda, then specialize.
        q = float(np.clip(1 + np.interp(np.log(lam), np.log(DEFAULT_LAMBDAS), np.arange(levels)), 1, levels))
        folder = train_and_export(args, out / f"lambda-{lam:g}", {"lambdas": [lam] * levels, "fixed_quality": q})
        pt = evaluate_in(folder, args.model, [q], images, args.device)[0]
        pt["lambda"] = lam
        fixed.append(pt)
        print(f"lambda {lam:g}: {pt['bpp']:.4f} bpp, {pt['psnr']:.2f} dB")
    if fixed:
        path = out / f"{args.model}-fixed.json"
        path.write_text(json.dumps(ev.compressai_json(args.model, fixed, f"fixed rate, {args.steps} steps ({args.precision})"), indent=2))
        print(f"wrote {path}")
    if fixed and variable:
        bd = ev.bd_rates(variable, fixed)
        print(f"variable rate vs fixed rate: BD-rate {bd['psnr']:+.1f} % (PSNR), {bd['ms_ssim']:+.1f} % (MS-SSIM)")


if __name__ == "__main__":
    main()
