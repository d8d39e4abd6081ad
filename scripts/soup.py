#!/usr/bin/env python
"""Average the weights of several checkpoints or shipped versions of one model (a uniform "model
soup") into a training checkpoint that campaign.py measure/export take.

    python scripts/soup.py runs/gpu/checkpoint.pt elic-context-hyperprior@23 --out runs/soup/checkpoint.pt

The first source must be a checkpoint: the soup keeps its config, step and lineage, and lists the
sources under the lineage's "soup". Floating-point tensors are averaged; the rest (integer CDF
tables, which export recomputes) come from the first source. Soups make sense only of weights that
share a training trunk (here: cooldowns branched off one campaign run); measure one, and export it
only with its sources named in the commit.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neuralcodec.errors import NeuralCodecError  # noqa: E402
from neuralcodec.models.weights import load_model  # noqa: E402
from neuralcodec.train.loop import CheckpointError, read_checkpoint  # noqa: E402


def weights_of(source: str) -> dict[str, torch.Tensor]:
    """The state dict of a checkpoint path or an installed version ``id@N``."""
    if Path(source).exists():
        return read_checkpoint(source)["model"]
    try:
        net = load_model(source).model
    except (NeuralCodecError, ValueError, KeyError) as exc:
        raise SystemExit(f"soup: {source}: neither a checkpoint nor an installed version ({exc})") from None
    return {k: v.float() if v.is_floating_point() else v for k, v in net.state_dict().items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", help="checkpoint paths or installed versions (id@N); the first a checkpoint")
    p.add_argument("--out", required=True, type=Path)
    a = p.parse_args()
    try:
        ck = read_checkpoint(a.sources[0])
        dicts = [ck["model"]] + [weights_of(s) for s in a.sources[1:]]
    except CheckpointError as exc:
        raise SystemExit(f"soup: {exc}") from None
    for s, d in zip(a.sources[1:], dicts[1:]):
        if d.keys() != ck["model"].keys():
            raise SystemExit(f"soup: {s} holds other tensors than {a.sources[0]} (another model?)")
    soup = {}
    for k, v in ck["model"].items():
        if not v.is_floating_point():
            soup[k] = v
        elif all(d[k].shape == v.shape for d in dicts):
            soup[k] = torch.stack([d[k].float() for d in dicts]).mean(0)
        else:
            raise SystemExit(f"soup: '{k}' has other shapes in other sources (another configuration?)")
    lineage = dict(ck.get("lineage", {}), soup=list(a.sources))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_name(a.out.name + ".tmp")  # written whole, then renamed: never a half checkpoint
    torch.save({"model": soup, "step": ck["step"], "config": ck["config"], "lineage": lineage}, tmp)
    os.replace(tmp, a.out)
    print(f"soup of {len(dicts)}: {a.out}")


if __name__ == "__main__":
    main()
