"""The training loop: rate-distortion loss over a continuous quality range, exact resume."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from compressai.entropy_models import EntropyBottleneck
from torch import Tensor

from ..models.registry import get_spec
from .data import CropSampler

# Lagrange multipliers of the trained operating points (quality 1..L), MSE on 0..255 scale.
DEFAULT_LAMBDAS = [0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483]


@dataclass
class TrainConfig:
    model: str = "mean-scale-hyperprior"
    data: str = "../shared/data/train"
    out: str = "runs/mean-scale-hyperprior"
    steps: int = 10000
    batch: int = 16
    crop: int = 128
    lr: float = 3e-4
    decay_at: float = 0.8  # fraction of steps after which lr drops 10x
    aux_lr: float = 1e-3
    lambdas: list[float] = field(default_factory=lambda: list(DEFAULT_LAMBDAS))
    seed: int = 0
    checkpoint_every: int = 250
    log_every: int = 25
    clip: float = 1.0
    ste: int = 1  # 1: decoder trains on rounded latents (straight-through); 0: on noisy latents
    init: str = ""  # warm start: weights (.safetensors) or checkpoint whose matching tensors are copied


def rd_loss(x: Tensor, out: dict[str, Tensor], lam: Tensor) -> dict[str, Tensor]:
    """Per-sample bpp and MSE; loss = mean(lambda * 255^2 * MSE + bpp)."""
    pixels = x.shape[2] * x.shape[3]
    bits = lambda lik: (-torch.log2(lik)).flatten(1).sum(1)  # noqa: E731
    bpp = sum(bits(v) for k, v in out.items() if k.endswith("_likelihoods")) / pixels
    mse = (out["x_hat"] - x).pow(2).flatten(1).mean(1)
    loss = (lam * 255**2 * mse + bpp).mean()
    return {"loss": loss, "bpp": bpp.mean(), "mse": mse.mean()}


def lambda_for_quality(quality: Tensor, lambdas: list[float]) -> Tensor:
    """Geometric interpolation of the trained lambdas at float qualities in [1, L]."""
    log_l = torch.tensor(lambdas, dtype=torch.float64).log()
    pos = (quality.double() - 1).clamp(0, len(lambdas) - 1)
    low = pos.floor().long().clamp(max=len(lambdas) - 2)
    t = pos - low
    return (log_l[low] * (1 - t) + log_l[low + 1] * t).exp().float()


def warm_start(model: torch.nn.Module, path: str) -> list[str]:
    """Copy every tensor of ``path`` whose name and shape match into ``model``; returns the names
    of the model's tensors that kept their initialization."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path, weights_only=False)["model"]
    own = model.state_dict()
    copied = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(copied, strict=False)
    return sorted(set(own) - set(copied))


def _bottlenecks(model: torch.nn.Module) -> list[EntropyBottleneck]:
    return [m for m in model.modules() if isinstance(m, EntropyBottleneck)]


def _save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(cfg: TrainConfig) -> Path:
    """Train (or resume) ``cfg.model``; returns the checkpoint path."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    torch.manual_seed(cfg.seed)
    model = get_spec(cfg.model).build()
    if len(cfg.lambdas) != model.levels:
        raise ValueError(f"{cfg.model} has {model.levels} quality levels, got {len(cfg.lambdas)} lambdas")
    aux_params = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    main_params = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    opt = torch.optim.Adam(main_params, lr=cfg.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=cfg.aux_lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    step = 0
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        aux_opt.load_state_dict(ck["aux_opt"])
        gen.set_state(ck["gen"])
        torch.set_rng_state(ck["rng"])
        step = ck["step"]
        print(f"resumed from {ckpt_path} at step {step}")
    elif cfg.init:
        fresh = warm_start(model, cfg.init)
        print(f"warm start from {cfg.init}; {len(fresh)} tensors keep their initialization")
    with open(out / "config.json", "w") as f:
        json.dump(asdict(cfg), f, indent=1)
    sampler = CropSampler(cfg.data, cfg.crop)
    model.train()
    log = open(out / "log.jsonl", "a")
    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.model}", unit="step")
    t0, acc = time.time(), {"loss": 0.0, "bpp": 0.0, "mse": 0.0}
    while step < cfg.steps:
        lr = cfg.lr * (0.1 if step >= cfg.decay_at * cfg.steps else 1.0)
        for g in opt.param_groups:
            g["lr"] = lr
        x = sampler.sample(cfg.batch, gen)
        quality = 1 + torch.rand(cfg.batch, generator=gen) * (model.levels - 1)
        res = rd_loss(x, model(x, quality, ste=bool(cfg.ste)), lambda_for_quality(quality, cfg.lambdas))
        opt.zero_grad(set_to_none=True)
        res["loss"].backward()
        torch.nn.utils.clip_grad_norm_(main_params, cfg.clip)
        opt.step()
        aux_opt.zero_grad(set_to_none=True)
        aux = sum(m.loss() for m in _bottlenecks(model))
        aux.backward()
        aux_opt.step()
        step += 1
        bar.update(1)
        for k in acc:
            acc[k] += float(res[k].detach())
        if step % cfg.log_every == 0:
            n = cfg.log_every
            rec = {"step": step, "lr": lr, "aux": float(aux.detach()), "sec": round(time.time() - t0, 1)}
            rec.update({k: v / n for k, v in acc.items()})
            rec["psnr"] = -10 * math.log10(max(rec["mse"], 1e-10))
            log.write(json.dumps(rec) + "\n")
            log.flush()
            bar.set_postfix(loss=f"{rec['loss']:.3f}", bpp=f"{rec['bpp']:.3f}", psnr=f"{rec['psnr']:.2f}")
            acc = {k: 0.0 for k in acc}
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            _save_atomic(
                {"model": model.state_dict(), "opt": opt.state_dict(), "aux_opt": aux_opt.state_dict(),
                 "gen": gen.get_state(), "rng": torch.get_rng_state(), "step": step, "config": asdict(cfg)},
                ckpt_path,
            )
    bar.close()
    log.close()
    return ckpt_path
