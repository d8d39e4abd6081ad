#!/usr/bin/env python
"""Proxy for tuning ``--effort``'s refinement schedule, without writing files.

For each schedule variant, refines the latents of centre crops of a few Kodak images and reports,
per quality, the change of the hard-rounded loss R + lambda * D (R from the model's own
likelihoods, D its MSE), of the estimated bpp and of the PSNR against the one-pass latents
(refined latents are kept only where that loss is lower, as the encoder does). Fast to run; the
real measure is ``scripts/bench_effort.py`` (bytes of real files).

    python scripts/tune_effort.py --model elic-context-hyperprior \
        --variants '{"s64": {"steps": 64}, "s128": {"steps": 128}, "s128lr.04": {"steps": 128, "lr": 0.04}}'

A variant sets fields of ``refine.Schedule`` (steps, lr, tau0, tau1, bf16); missing ones take
effort 6's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from neuralcodec.models import refine
from neuralcodec.models.weights import load_model


def crops(folder: str, names: list[str], size: int) -> list[torch.Tensor]:
    out = []
    for name in names:
        a = np.asarray(Image.open(Path(folder) / f"{name}.png").convert("RGB"))
        if min(a.shape[:2]) < size:
            raise SystemExit(f"{name}: {a.shape[1]}x{a.shape[0]} is smaller than --crop {size}")
        t, left = (a.shape[0] - size) // 2, (a.shape[1] - size) // 2
        out.append(torch.from_numpy(a[t : t + size, left : left + size].copy()).permute(2, 0, 1)[None].float().div(255))
    return out


@torch.no_grad()
def hard_cost(model, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor | None, q: float, lam: float) -> tuple[float, float, float]:
    """(estimated bpp, MSE, bpp + lam * 255^2 * MSE) of latents rounded as the coder rounds them."""
    x_hat, liks = model.relaxed(y, z, q, torch.round)
    bpp = float(sum((-torch.log2(lik)).sum() for lik in liks)) / (x.shape[2] * x.shape[3])
    mse = float((x_hat.clamp(0, 1) - x).pow(2).mean())
    return bpp, mse, bpp + lam * 255**2 * mse


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="elic-context-hyperprior")
    p.add_argument("--variants", required=True, help="JSON object: name -> Schedule fields")
    p.add_argument("--qualities", default="1,3.5,6")
    p.add_argument("--images", default="kodim01,kodim07,kodim19")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    loaded = load_model(args.model)
    model, lambdas = loaded.model, refine.trained_lambdas(loaded.model_id)  # as the encoder does
    images = crops(args.data, args.images.split(","), args.crop)
    qualities = [float(q) for q in args.qualities.split(",")]
    base = refine.schedule(refine.MAX_EFFORT)
    for name, fields in json.loads(args.variants).items():
        plan = dataclasses.replace(base, **fields)
        t0 = time.process_time()
        cells = []
        for q in qualities:
            lam = refine.lambda_at(q, lambdas)
            before = [hard_cost(model, x, *model.analyze(x, q), q, lam) for x in images]
            after = [hard_cost(model, x, *refine.refine_latents(model, x, q, plan, lam), q, lam) for x in images]
            b, a = np.array(before), np.array(after)
            cells.append(f"q{q:g}: loss {100 * (a[:, 2].mean() / b[:, 2].mean() - 1):+.2f} % "
                         f"bpp {100 * (a[:, 0].mean() / b[:, 0].mean() - 1):+.1f} % "
                         f"PSNR {np.mean(-10 * np.log10(a[:, 1])) - np.mean(-10 * np.log10(b[:, 1])):+.2f} dB")
        print(f"{name} ({time.process_time() - t0:.0f} CPU-s) | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
