"""The training loop: rate-distortion loss over a continuous quality range, exact resume.

Checkpoints hold only tensors, numbers, strings, lists and dicts, so they load with
``torch.load(..., weights_only=True)`` (no pickle code runs), as every load here does.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import numpy as np
import torch.distributed as dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel as DDP

from .._compressai import EntropyBottleneck
from ..errors import CheckpointError
from ..models.determinism import fast_bf16
from ..models.registry import get_spec
from ..models.manifest import find_digest, find_version, parse_ref, weights_dir
from ..models.weights import file_digest, load_state
from .data import CropSampler
from .widen import widen_state

# Lagrange multipliers of the trained operating points (quality 1..L): for MSE on the 0..255
# scale, and for 1 - MS-SSIM (compressai's values for both).
DEFAULT_LAMBDAS = [0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483]
MS_SSIM_LAMBDAS = [2.40, 4.58, 8.73, 16.64, 31.73, 60.50]
DISTORTIONS = ("mse", "ms-ssim")
RATE_TERMS = ("noise", "round")
DECAYS = ("step", "linear")
PRECISIONS = ("auto", "bf16", "fp32")
MAX_BAD_STEPS = 50  # consecutive steps with a non-finite loss or gradients before training stops


@dataclass
class TrainConfig:
    model: str = "mean-scale-hyperprior"
    data: str = "../shared/data/train"
    out: str = "runs/mean-scale-hyperprior"
    steps: int = 10000
    batch: int = 16
    crop: int = 128
    lr: float = 3e-4
    decay_at: float = 0.8  # fraction of steps after which the lr decays
    decay: str = "step"  # "step": lr / 10 from decay_at on; "linear": from lr falling linearly toward 0 (lr / n at the last of n steps)
    aux_lr: float = 1e-3
    distortion: str = "mse"  # mse or ms-ssim (needs crops of at least 192 pixels)
    lambdas: list[float] = field(default_factory=list)  # empty: the defaults for the distortion
    seed: int = 0
    checkpoint_every: int = 250
    log_every: int = 25
    clip: float = 1.0
    ste: int = 1  # 1: decoder trains on rounded latents (straight-through); 0: on noisy latents
    rate: str = "noise"  # rate term: likelihoods of noisy latents, or "round": of the rounded ones the coder codes
    init: str = ""  # warm start: weights (.safetensors), a checkpoint, or an installed model ref (id = newest, id@N)
    fresh_lr: float = 0.0  # > 0: lr of the parameters a warm start left at their initialization
    device: str = "auto"  # auto: this process's CUDA device if there is one, else cpu
    precision: str = "auto"  # bf16 autocast where native (2x faster, same RD at equal steps), else fp32; or force one
    fixed_quality: float = 0.0  # > 0: train one operating point (fixed-rate baseline) instead of the range
    quality_tilt: float = 0.0  # > 0: sample qualities with density ~ position^tilt (0: uniform, 1: linear ramp to the top)
    eval_every: int = 0  # steps between Kodak probes with real coding (0: never)
    eval_data: str = "../shared/data/kodak"
    eval_images: int = 4
    minutes: float = 0.0  # > 0: stop after this much wall time (checkpoint written), e.g. for a lent GPU
    warmup: int = 0  # steps of linear lr warm-up from 0 (counted from step 0 of the run)
    channels_last: int = 1  # 1: NHWC activations and weights (faster convolutions on this CPU, docs/benchmarks.md)
    train_only: str = ""  # comma-separated parameter-name prefixes to train (e.g. "g_s." for a synthesis fine-tune); empty: all


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """The learning rate of ``step`` (counted from 0) as a fraction of ``cfg.lr``, before warm-up."""
    # the first step at or after decay_at * steps, within decay_at's printed precision (0.939394 * 16500: 15,500)
    start = math.ceil(cfg.decay_at * cfg.steps - 1e-6 * cfg.steps)
    if step < start:
        return 1.0
    if cfg.decay == "linear":
        return max(0.0, 1.0 - (step - start) / max(1.0, cfg.steps - start))
    return 0.1


def rd_loss(x: Tensor, out: dict[str, Tensor], lam: Tensor, distortion: str = "mse") -> dict[str, Tensor]:
    """Per-sample bpp and distortion; loss = mean(lambda * D + bpp) with D = 255^2 * MSE or
    1 - MS-SSIM. ``mse`` is reported either way."""
    pixels = x.shape[2] * x.shape[3]
    bits = lambda lik: (-torch.log2(lik)).flatten(1).sum(1)  # noqa: E731
    bpp = sum(bits(v) for k, v in out.items() if k.endswith("_likelihoods")) / pixels
    mse = (out["x_hat"] - x).pow(2).flatten(1).mean(1)
    if distortion == "mse":
        d = 255**2 * mse
    else:
        from pytorch_msssim import ms_ssim

        d = 1 - ms_ssim(out["x_hat"].clamp(0, 1), x, data_range=1.0, size_average=False)
    loss = (lam * d + bpp).mean()
    return {"loss": loss, "bpp": bpp.mean(), "mse": mse.mean()}


def lambda_for_quality(quality: Tensor, lambdas: list[float]) -> Tensor:
    """Geometric interpolation of the trained lambdas at float qualities in [1, L]."""
    log_l = torch.tensor(lambdas, dtype=torch.float64).log()
    pos = (quality.double() - 1).clamp(0, len(lambdas) - 1)
    low = pos.floor().long().clamp(max=len(lambdas) - 2)
    t = pos - low
    return (log_l[low] * (1 - t) + log_l[low + 1] * t).exp().float()


def sample_qualities(n: int, levels: int, tilt: float, gen: torch.Generator) -> Tensor:
    """(n,) float qualities in [1, levels]; density ~ (q - 1)^tilt (tilt 0: uniform)."""
    u = torch.rand(n, generator=gen)
    if tilt:
        u = u ** (1 / (1 + tilt))  # density (1 + tilt) * u^tilt
    return 1 + u * (levels - 1)


def load_moments(opt: torch.optim.Optimizer, state: dict) -> None:
    """Restore an optimizer's moments from a checkpoint; its hyperparameters (lr, base_lr) stay
    this run's, so a resumed branch trains at its own --lr and --aux_lr."""
    own = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    opt.load_state_dict(state)
    for g, h in zip(opt.param_groups, own):
        g.update(h)


def read_checkpoint(path: str | Path, keys: tuple[str, ...] = ("model", "config", "step")) -> dict:
    """The training checkpoint at ``path`` (tensors on CPU): a dict with at least ``keys`` (an
    image run's: model, config and step). Raises CheckpointError, one line, for anything else."""
    try:
        ck = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except Exception as e:  # empty, truncated zip, foreign pickle, ...: torch raises many kinds
        why = (str(e).strip().splitlines() or ["empty file"])[0].split(". ")[0][:160]
        raise CheckpointError(f"{path}: not a readable training checkpoint ({type(e).__name__}: {why})") from None
    missing = [k for k in keys if not isinstance(ck, dict) or k not in ck]
    if missing:
        raise CheckpointError(f"{path}: not a training checkpoint of this kind (no {', '.join(missing)})")
    return ck


def resolve_init(init: str, model_id: str) -> tuple[str, str]:
    """The file a ``--init`` names and a label for it: ``(path, "id@N")`` for installed weights,
    given by path or by ref (``id`` is the newest version, ``id@N`` version N), ``(path, "")`` for
    any other file. ValueError if it is neither a file nor an installed version. The label says
    which version a weights file is: ``weights/<id>.safetensors`` is version 1, not the newest."""
    if not init:
        return "", ""
    path = Path(init)
    if not path.is_file():
        try:
            entry = find_version(*parse_ref(init))
        except ValueError:
            entry = None
        if entry is None:
            raise ValueError(f"--init {init!r} is neither a file nor an installed model version "
                             f"(e.g. {model_id} for its newest weights, {model_id}@1)")
        path = weights_dir() / entry["file"]
    if path.suffix != ".safetensors":
        return str(path), ""
    found = find_digest(file_digest(path).hex())
    if found is None:
        return str(path), ""
    other, entry = found
    newest = find_version(other)["version"]
    note = "" if entry["version"] == newest else f", not the newest: @{newest}"
    return str(path), f"{other}@{entry['version']}{note}"


def warm_start(model: torch.nn.Module, path: str) -> list[str]:
    """Copy every tensor of ``path`` whose name and shape match into ``model``; returns the names
    of the model's tensors that kept their initialization. Weights of a model with fewer latent
    channels are widened first, so the wider model starts out computing the same (``widen.py``)."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            state = load_file(path)
        except Exception as e:  # truncated or not safetensors: safetensors raises its own error type
            raise CheckpointError(f"{path}: not a readable weights file ({type(e).__name__})") from None
    else:
        state = read_checkpoint(path)["model"]
    own = model.state_dict()
    key = "gain.log_gain"
    if key in state and key in own and state[key].shape[1] < own[key].shape[1]:
        state = widen_state(state, model)
    copied = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    load_state(model, copied, strict=False)
    return sorted(set(own) - set(copied))


def _bottlenecks(model: torch.nn.Module) -> list[EntropyBottleneck]:
    return [m for m in model.modules() if isinstance(m, EntropyBottleneck)]


class KodakProbe:
    """Real coding of a few test images at the lowest, middle and highest trained quality."""

    def __init__(self, folder: str, limit: int, levels: int) -> None:
        from PIL import Image

        from ..io.files import list_images

        paths = list_images(folder)[:limit]
        if not paths:
            raise FileNotFoundError(f"no evaluation images under {folder}")
        self.images = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
        self.qualities = [1.0, (1 + levels) / 2, float(levels)]

    @torch.no_grad()
    def __call__(self, model: torch.nn.Module) -> list[dict]:
        import torch.nn.functional as F

        m = copy.deepcopy(model).cpu().eval()
        m.export_tables()
        m.prepare_for_coding()
        points = []
        for q in self.qualities:
            bits, sq, pixels = 0, [], 0
            for rgb in self.images:
                h, w = rgb.shape[:2]
                x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float().div(255)
                k = m.downsampling
                x = F.pad(x, (0, -w % k, 0, -h % k), mode="replicate")
                coded = m.compress(x, q)[0]
                bits += 8 * sum(map(len, coded.sections))
                rec = coded.x_hat[0, :, :h, :w].mul(255).round().clamp(0, 255).numpy()
                sq.append(float(((rec - rgb.transpose(2, 0, 1).astype(np.float64)) ** 2).mean()))
                pixels += h * w
            psnr = float(np.mean([10 * math.log10(255**2 / max(e, 1e-10)) for e in sq]))
            points.append({"quality": q, "bpp": bits / pixels, "psnr": psnr})
        return points


def rng_state(device: str) -> dict[str, Tensor]:
    """Checkpoint entries (ByteTensors) for the default generators training draws from: ``rng``
    the CPU's, ``cuda_rng`` the CUDA device's when training on one (compressai's training noise
    is drawn on the device)."""
    state = {"rng": torch.get_rng_state()}
    if torch.device(device).type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(ck: dict, device: str) -> None:
    """Restore what :func:`rng_state` saved. Under DDP every rank draws the same number of
    same-shaped samples from identically seeded generators, so rank 0's states are every rank's."""
    torch.set_rng_state(ck["rng"])
    if "cuda_rng" in ck and torch.device(device).type == "cuda":
        torch.cuda.set_rng_state(ck["cuda_rng"], device)


def save_atomic(obj: dict, path: Path) -> None:
    """torch.save to a temporary file beside ``path``, then rename: never a half-written file."""
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _distributed(device: str) -> tuple[int, int]:
    """(rank, world size); joins the process group when launched by ``torchrun``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return dist.get_rank(), world


def _device(cfg: TrainConfig) -> str:
    if cfg.device != "auto":
        return cfg.device
    if torch.cuda.is_available():
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return "cpu"


def state_digest(model: torch.nn.Module) -> str:
    """SHA-256 over a model's parameters and buffers (to compare replicas)."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


SEGMENT_KEYS = ("out", "lr", "decay_at", "decay", "steps", "fresh_lr", "warmup", "rate", "quality_tilt", "batch", "crop")


def log_starts(log: Path) -> list[list[dict]]:
    """A run's ``log.jsonl`` timed records (those with ``sec``), one list per start of the run (each
    start restarts the clock); [] for no log."""
    if not log.exists():
        return []
    starts: list[list[dict]] = []
    for r in map(json.loads, filter(str.strip, log.read_text().splitlines())):
        if "sec" in r:
            if not starts or r["sec"] < starts[-1][-1]["sec"]:
                starts.append([])
            starts[-1].append(r)
    return starts


def log_seconds(log: Path) -> float | None:
    """Wall seconds a run's ``log.jsonl`` covers, summed over its starts."""
    return sum(recs[-1]["sec"] for recs in log_starts(log)) or None


def log_steps_per_second(log: Path) -> float:
    """Training steps per wall second of the last start in ``log``, between its first and last
    records (start-up excluded); 0.0 with fewer than two records."""
    recs = (log_starts(log) or [[]])[-1]
    if len(recs) < 2 or recs[-1]["sec"] <= recs[0]["sec"]:
        return 0.0
    return (recs[-1]["step"] - recs[0]["step"]) / (recs[-1]["sec"] - recs[0]["sec"])


def _segment(cfg: TrainConfig, step: int) -> dict:
    """One run of a lineage: the step it continued from and the settings it trained with."""
    return {"from": step, **{k: getattr(cfg, k) for k in SEGMENT_KEYS}, "out": str(Path(cfg.out).resolve())}


def _digest(path: str) -> str:
    """The SHA-256 (hex) of a warm-start file, "" for none or one no longer on this machine."""
    return file_digest(Path(path)).hex() if path and Path(path).exists() else ""


def lineage(ck: dict | None, cfg: TrainConfig, step: int) -> dict:
    """Where a checkpoint's weights come from, carried from checkpoint to checkpoint.

    ``{"init": path, "init_sha256": hex, "seconds": float | None, "runs": [{"from": step, "out", "lr",
    ...}]}``: the warm start step 0 began from (its digest names the shipped version), the wall
    seconds trained since, and one entry per run that continued it with other settings (a
    campaign, then a learning-rate drop resumed from a copy of its checkpoint). A resumed
    run's own ``--init`` only decides its parameter groups; it does not change the lineage.
    """
    if ck is None:
        lin = {"init": cfg.init, "init_sha256": _digest(cfg.init), "seconds": 0.0, "runs": [_segment(cfg, 0)]}
    elif "lineage" in ck:
        lin = copy.deepcopy(ck["lineage"])
    else:  # a checkpoint from before lineages: its own config and log are all there is
        old = TrainConfig(**{k: v for k, v in ck["config"].items() if k in TrainConfig.__dataclass_fields__})
        lin = {"init": old.init, "init_sha256": _digest(old.init), "seconds": log_seconds(Path(old.out) / "log.jsonl"),
               "runs": [_segment(old, 0)]}
    seg, last = _segment(cfg, 0), lin["runs"][-1]
    defaults = _segment(TrainConfig(), 0)  # a key the last run lacks is from before it was recorded: it ran the default
    last = {**defaults, **last, "from": 0, "out": str(Path(last["out"]).resolve())}
    if seg != last:
        lin["runs"].append(_segment(cfg, step))
    return lin


def train(cfg: TrainConfig) -> Path:
    """Train (or resume) ``cfg.model``; returns the checkpoint path.

    Under ``torchrun --nproc_per_node N`` every process draws the same global batch of
    ``cfg.batch`` crops from the same generator and trains on its own slice (DDP averages the
    gradients), so N processes follow the single-process recipe and resume from the same
    checkpoint. Rank 0 writes the log and checkpoints.
    """
    device = _device(cfg)
    rank, world = _distributed(device)
    if cfg.batch % world:
        raise ValueError(f"batch {cfg.batch} is not divisible by {world} processes")
    out = Path(cfg.out)
    ckpt_path = out / "checkpoint.pt"
    torch.manual_seed(cfg.seed)
    model = get_spec(cfg.model).build()
    if cfg.distortion not in DISTORTIONS:
        raise ValueError(f"distortion must be one of {DISTORTIONS}, got {cfg.distortion!r}")
    if cfg.crop % model.downsampling:
        raise ValueError(f"--crop {cfg.crop} is not a multiple of {model.downsampling}, the padding {cfg.model} needs")
    if cfg.distortion == "ms-ssim" and cfg.crop < 192:
        raise ValueError("MS-SSIM needs crops of at least 192 pixels (its five scales)")
    if cfg.decay not in DECAYS:
        raise ValueError(f"decay must be one of {DECAYS}, got {cfg.decay!r}")
    if cfg.rate not in RATE_TERMS:
        raise ValueError(f"rate must be one of {RATE_TERMS}, got {cfg.rate!r}")
    if cfg.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {cfg.precision!r}")
    init, init_label = resolve_init(cfg.init, cfg.model)
    cfg = replace(cfg, init=init)  # config and lineage name the file
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and fast_bf16(device))
    if rank == 0 and cfg.precision == "auto" and not bf16:
        print(f"training in fp32: bf16 is not native on {device} here (--precision bf16 forces it)")
    if cfg.rate == "round" and "rate_round" not in inspect.signature(model.forward).parameters:
        raise ValueError(f"{cfg.model} has no rounded rate term (--rate round): use --rate noise")
    lambdas = cfg.lambdas or (DEFAULT_LAMBDAS if cfg.distortion == "mse" else MS_SSIM_LAMBDAS)
    if len(lambdas) != model.levels:
        raise ValueError(f"{cfg.model} has {model.levels} quality levels, got {len(lambdas)} lambdas")
    aux_names = [n for n, _ in model.named_parameters() if n.endswith("quantiles")]
    if cfg.train_only:
        prefixes = tuple(p.strip() for p in cfg.train_only.split(",") if p.strip())
        if not any(n.startswith(prefixes) for n, _ in model.named_parameters()):
            raise ValueError(f"--train_only {cfg.train_only!r} matches no parameter of {cfg.model}")
        for n, p in model.named_parameters():  # the quantiles keep training (aux loss only)
            p.requires_grad_(n.startswith(prefixes) or n in aux_names)
    step = 0
    ck = read_checkpoint(ckpt_path) if ckpt_path.exists() else None
    fresh: list[str] = []
    if cfg.init:
        fresh = warm_start(model, cfg.init)  # also on resume: it decides the parameter groups
        params = dict(model.named_parameters())
        if frozen_fresh := [n for n in fresh if n in params and not params[n].requires_grad]:
            raise ValueError(f"--train_only {cfg.train_only!r} would freeze {len(frozen_fresh)} tensors that "
                             f"{cfg.init} did not initialize (e.g. {frozen_fresh[0]})")
        if rank == 0 and ck is None:
            named = f" ({init_label})" if init_label else ""
            print(f"warm start from {cfg.init}{named}; {len(fresh)} tensors keep their initialization")
    if ck is not None:
        if ck["config"].get("train_only", "") != cfg.train_only:
            raise ValueError(f"{ckpt_path} was trained with --train_only {ck['config'].get('train_only', '')!r}, "
                             f"not {cfg.train_only!r}: resume with the same setting or start a new --out")
        load_state(model, ck["model"])
    out.mkdir(parents=True, exist_ok=True)  # only once the settings and the files they name are valid
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    aux_params = [p for n, p in model.named_parameters() if n in aux_names]
    named = [(n, p) for n, p in model.named_parameters() if n not in aux_names and p.requires_grad]
    main_params = [p for _, p in named]
    groups = [{"params": [p for n, p in named if n not in fresh], "base_lr": cfg.lr}]
    if cfg.fresh_lr and fresh:
        groups = [groups[0], {"params": [p for n, p in named if n in fresh], "base_lr": cfg.fresh_lr}]
    else:
        groups[0]["params"] = main_params
    opt = torch.optim.Adam([g for g in groups if g["params"]], lr=cfg.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=cfg.aux_lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    if ck is not None:
        step = ck["step"]
        how = ""
        if "opt" in ck:  # a full checkpoint: the run continues exactly
            load_moments(opt, ck["opt"])
            load_moments(aux_opt, ck["aux_opt"])
            gen.set_state(ck["gen"])
            set_rng_state(ck, device)
        else:  # weights only (campaign.py save, train_gpu.sh): fresh moments, crops not drawn before
            gen.manual_seed(cfg.seed + step)
            torch.manual_seed(cfg.seed + step)
            how = " (weights only: the optimizer's moments start afresh)"
        if rank == 0:
            print(f"resumed from {ckpt_path} at step {step}{how}")
    lin = lineage(ck, cfg, step)
    seconds0 = lin["seconds"]
    net = model
    if world > 1:
        # the quantiles only see the auxiliary loss, outside the forward pass: synchronized by hand
        DDP._set_params_and_buffers_to_ignore_for_model(model, aux_names)
        net = DDP(model, device_ids=[torch.device(device).index] if device.startswith("cuda") else None)
    if rank == 0:
        with open(out / "config.json", "w") as f:
            json.dump(asdict(cfg), f, indent=1)
    sampler = CropSampler(cfg.data, cfg.crop, progress=rank == 0)
    evaluator = KodakProbe(cfg.eval_data, cfg.eval_images, model.levels) if cfg.eval_every and rank == 0 else None
    model.train()
    log = open(out / "log.jsonl", "a") if rank == 0 else None
    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.model}", unit="step", disable=rank != 0)
    local = slice(rank * cfg.batch // world, (rank + 1) * cfg.batch // world)
    t0, acc = time.time(), {"loss": 0.0, "bpp": 0.0, "mse": 0.0}
    skipped = in_a_row = 0
    out_of_time = False
    while step < cfg.steps and not out_of_time:
        decay = lr_factor(step, cfg)
        if cfg.warmup:
            decay *= min(1.0, (step + 1) / cfg.warmup)
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * decay
        lr = cfg.lr * decay
        x = sampler.sample(cfg.batch, gen)[local].to(device)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        quality = sample_qualities(cfg.batch, model.levels, cfg.quality_tilt, gen)[local]
        if cfg.fixed_quality:
            quality = torch.full_like(quality, cfg.fixed_quality)
        lam = lambda_for_quality(quality, lambdas).to(device)
        with torch.autocast(torch.device(device).type, torch.bfloat16, enabled=bf16):
            out_ = net(x, quality.to(device), ste=bool(cfg.ste), **({"rate_round": True} if cfg.rate == "round" else {}))
        res = rd_loss(x, {k: v.float() for k, v in out_.items()}, lam, cfg.distortion)
        opt.zero_grad(set_to_none=True)
        res["loss"].backward()
        # Gradients are identical on every rank after DDP's all-reduce, so all ranks skip together.
        # Gradients are identical on every rank after DDP's all-reduce, the loss is not: its flag is
        # reduced too, so all ranks skip together (a non-finite loss with finite gradients happens
        # when the non-finite term does not reach the trained parameters, e.g. --train_only g_s.).
        ok = torch.isfinite(torch.nn.utils.clip_grad_norm_(main_params, cfg.clip)) & torch.isfinite(res["loss"].detach())
        if world > 1:
            ok = ok.to(torch.int32)
            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        finite = bool(ok)
        if finite:
            opt.step()
        aux_opt.zero_grad(set_to_none=True)
        aux = sum(m.loss() for m in _bottlenecks(model))
        aux.backward()
        if world > 1:
            for p in aux_params:
                dist.all_reduce(p.grad)
                p.grad /= world
        if all(bool(torch.isfinite(p.grad).all()) for p in aux_params if p.grad is not None):
            aux_opt.step()
        step += 1
        bar.update(1)
        if finite:
            for k in acc:
                acc[k] += float(res[k].detach())
            in_a_row = 0
        else:
            skipped, in_a_row = skipped + 1, in_a_row + 1
            if in_a_row >= MAX_BAD_STEPS:
                raise FloatingPointError(f"{in_a_row} steps in a row had a non-finite loss or gradients (step {step}); "
                                         "lower --lr or resume from an earlier checkpoint")
        if log and step % cfg.log_every == 0:
            n = cfg.log_every - skipped
            rec = {"step": step, "lr": lr, "aux": float(aux.detach()), "sec": round(time.time() - t0, 3)}
            if n:
                rec.update({k: v / n for k, v in acc.items()})
                rec["psnr"] = -10 * math.log10(max(rec["mse"], 1e-10))
            if skipped:
                rec["skipped"] = skipped  # steps of this window left out: non-finite loss or gradients
            skipped = 0
            log.write(json.dumps(rec) + "\n")
            log.flush()
            if n:
                bar.set_postfix(loss=f"{rec['loss']:.3f}", bpp=f"{rec['bpp']:.3f}", psnr=f"{rec['psnr']:.2f}")
            acc = {k: 0.0 for k in acc}
        if cfg.minutes and step % 10 == 0:  # every rank stops at the same step
            flag = torch.tensor([float(time.time() - t0 >= 60 * cfg.minutes)], device=device)
            if world > 1:
                dist.broadcast(flag, 0)
            out_of_time = bool(flag.item())
        if rank == 0 and (step % cfg.checkpoint_every == 0 or step == cfg.steps or out_of_time):
            lin["seconds"] = None if seconds0 is None else seconds0 + time.time() - t0  # unrounded: a short branch must add
            save_atomic(
                {"model": model.state_dict(), "opt": opt.state_dict(), "aux_opt": aux_opt.state_dict(),
                 "gen": gen.get_state(), **rng_state(device), "step": step, "config": asdict(cfg), "lineage": lin},
                ckpt_path,
            )
        if evaluator and (step % cfg.eval_every == 0 or step == cfg.steps):
            rec = {"step": step, "kodak": evaluator(model)}
            log.write(json.dumps(rec) + "\n")
            log.flush()
            bar.write(f"step {step}: Kodak " + ", ".join(f"q{p['quality']:g} {p['bpp']:.3f} bpp {p['psnr']:.2f} dB" for p in rec["kodak"]))
            model.train()
    bar.close()
    if world > 1:
        digests = [None] * world
        dist.all_gather_object(digests, state_digest(model))
        if log:
            log.write(json.dumps({"step": step, "rank_digests": digests}) + "\n")
        dist.barrier()
        dist.destroy_process_group()
    if log:
        log.close()
    return ckpt_path
