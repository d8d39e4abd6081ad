#!/usr/bin/env python
"""Train (or resume) an image model of the registry on a folder of photos.

    python scripts/train.py --model mean-scale-hyperprior --data ../shared/data/train --out runs/msh

Re-running the same command resumes from ``OUT/checkpoint.pt`` exactly where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses

from neuralcodec._malloc import tune_malloc
from neuralcodec.errors import CheckpointError
from neuralcodec.train.loop import TrainConfig, train


def main() -> None:
    tune_malloc()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        val = getattr(defaults, f.name)
        if isinstance(val, list):
            p.add_argument(f"--{f.name}", type=float, nargs="+", default=val)
        else:
            p.add_argument(f"--{f.name}", type=type(val), default=val)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    args = vars(p.parse_args())
    threads = args.pop("threads")
    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        print(train(TrainConfig(**args)))
    except (CheckpointError, ValueError) as e:  # a bad checkpoint or setting: one line
        raise SystemExit(f"train: {e}")


if __name__ == "__main__":
    main()
