#!/usr/bin/env python
"""Turn a training checkpoint into shipped weights: weights/<id>.safetensors + manifest entry.

    python scripts/export_weights.py runs/msh/checkpoint.pt
    python scripts/eval_rd.py --update-manifest      # then measure and record its Kodak RD
"""

from __future__ import annotations

import argparse
from pathlib import Path

from neuralcodec.models.registry import get_spec
from neuralcodec.models.weights import export_weights, load_state
from neuralcodec.models.manifest import find_digest
from neuralcodec.errors import CheckpointError
from neuralcodec.train.loop import (DEFAULT_LAMBDAS, MS_SSIM_LAMBDAS, SEGMENT_KEYS, TrainConfig, lineage, log_seconds,
                                   read_checkpoint)


ROOT = Path(__file__).resolve().parents[1]


def _rel(path: str) -> str:
    """A path inside the repository relative to its root (as the README's commands are run)."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else path


def describe_init(model_id: str, lin: dict) -> str:
    """The warm start as a shipped version when its digest is one, else as a path."""
    if not lin["init"]:
        return ""
    found = find_digest(lin["init_sha256"]) if lin["init_sha256"] else None
    if found is None:
        return _rel(lin["init"])
    init_id, entry = found  # a widened model starts from another model's weights
    return f"{init_id}@{entry['version']} (weights/{entry['file']}, {entry['training']['steps']:,} steps)"


def run_command(model_id: str, run: dict, final_step: int, lin: dict) -> str:
    """One run of the lineage as the command that reproduces it (the first warm-starts)."""
    init = f" --init {_rel(lin['init'])}" if run["from"] == 0 and lin["init"] else ""
    defaults = TrainConfig()
    args = " ".join(f"--{k} {run[k]}" for k in SEGMENT_KEYS if k != "out" and k in run
                    and (k in ("lr", "steps") or run[k] != getattr(defaults, k)))
    cmd = f"python scripts/train.py --model {model_id} --out {_rel(run['out'])}{init} {args}"
    later = [r["from"] for r in lin["runs"] if r["from"] > run["from"]]
    stop = min(later) if later else final_step
    if stop < run["steps"]:
        cmd += f" (to step {stop:,})"
    return cmd if run["from"] == 0 else f"from its step-{run['from']:,} checkpoint: {cmd}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--out", default=None, help="weights folder (default: weights/)")
    p.add_argument("--quality-range", type=float, nargs=2, metavar=("LO", "HI"),
                   help="qualities the weights are shipped for (those that measured better than JPEG)")
    p.add_argument("--default-quality", type=float)
    args = p.parse_args()
    try:
        ck = read_checkpoint(args.checkpoint)
    except CheckpointError as e:
        raise SystemExit(f"export_weights: {e}")
    cfg = ck["config"]
    model = get_spec(cfg["model"]).build()
    load_state(model, ck["model"])
    distortion = cfg.get("distortion", "mse")
    # a checkpoint from before lineages gets one from its own config (and its run's log)
    lin = ck.get("lineage") or lineage(ck, TrainConfig(**{k: v for k, v in cfg.items() if k in TrainConfig.__dataclass_fields__}), ck["step"])
    # the last run is the checkpoint's own: its config fills in keys its lineage began recording later
    runs = lin["runs"][:-1] + [{**{k: cfg[k] for k in SEGMENT_KEYS if k in cfg}, **lin["runs"][-1]}]
    info = {
        "training": {
            "data": cfg["data"], "steps": ck["step"], "batch": cfg["batch"], "crop": cfg["crop"],
            "lr": cfg["lr"], "distortion": distortion,
            "lambdas": cfg.get("lambdas") or (DEFAULT_LAMBDAS if distortion == "mse" else MS_SSIM_LAMBDAS),
            "init": describe_init(cfg["model"], lin),
            "hardware": "a CUDA GPU (the last run's device)" if str(cfg.get("device", "cpu")).startswith("cuda")
            else "2 CPU cores (AMD EPYC), torch 2.14.1",
            "wall_seconds": round(lin["seconds"], 1) if lin["seconds"] is not None
            else log_seconds(Path(args.checkpoint).parent / "log.jsonl"),
            "command": "; then ".join(run_command(cfg["model"], r, ck["step"], lin) for r in runs),
            "runs_from": [r["from"] for r in lin["runs"]],  # a cooldown's last: the campaign step it left at
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
