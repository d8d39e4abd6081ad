#!/usr/bin/env python
"""Training-step throughput on this machine: images/s for a registry model under each mode
(fp32, bf16 autocast, channels_last, torch.compile and their combinations). Run twice to see the
malloc tuning:

    python scripts/bench_train.py --threads 1 --modes fp32 bf16 bf16+channels_last bf16+compile
    python scripts/bench_train.py --threads 1 --modes fp32 --data ../shared/data/train   # + the data's share
    NEURALCODEC_NO_MALLOC_TUNING=1 python scripts/bench_train.py
"""

from __future__ import annotations

import argparse
import time

import torch

from neuralcodec._malloc import tune_malloc
from neuralcodec.models.registry import get_spec
from neuralcodec.train.data import CropSampler
from neuralcodec.train.loop import DEFAULT_LAMBDAS, lambda_for_quality, rd_loss


def main() -> None:
    tuned = tune_malloc()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="mean-scale-hyperprior")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--modes", nargs="+", default=["fp32", "bf16", "channels_last"],
                   help="fp32, bf16, channels_last, compile, or '+'-joined combinations")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    p.add_argument("--data", default="", help="also time the training loop's crop sampler on this photo folder")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"{args.model}, batch {args.batch}x{args.crop}^2, {torch.get_num_threads()} threads, malloc tuning {'on' if tuned else 'off'}")
    if args.data:
        sampler = CropSampler(args.data, args.crop, progress=False)
        gen = torch.Generator().manual_seed(0)
        t = time.perf_counter()
        for _ in range(100):
            sampler.sample(args.batch, gen)
        print(f"  crop sampler ({len(sampler.images)} photos in memory): {(time.perf_counter() - t) * 10:.2f} ms/batch")
    for mode in args.modes:
        parts = set(mode.split("+"))
        model = get_spec(args.model).build().train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        x = torch.rand(args.batch, 3, args.crop, args.crop)
        if "channels_last" in parts:
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        net = torch.compile(model) if "compile" in parts else model
        q = 1 + torch.rand(args.batch) * (model.levels - 1)
        lam = lambda_for_quality(q, DEFAULT_LAMBDAS)
        times = []
        for _ in range(args.steps):
            t = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled="bf16" in parts):
                out = net(x, q)
            out = {k: v.float() for k, v in out.items()}
            loss = rd_loss(x, out, lam)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t)
        step = sorted(times[2:])[len(times[2:]) // 2]  # median after 2 warm-up steps (compilation)
        print(f"  {mode:<22} {step:.3f} s/step  {args.batch / step:.1f} images/s  {3600 / step:,.0f} steps/hour")


if __name__ == "__main__":
    main()
