#!/usr/bin/env python
"""The compression campaign: background training of one model that never stops for long.

    python scripts/campaign.py start                # start or resume in the background (1 thread), returns at once
    python scripts/campaign.py status               # step, speed, the last Kodak probes
    python scripts/campaign.py stop
    python scripts/campaign.py save                 # its weights and step into campaign/<id>.pt (commit it: a new machine continues there)
    python scripts/campaign.py seed --run /tmp/run  # copy that state into a run folder (scripts/train_gpu.sh continues it on a GPU)
    python scripts/campaign.py cooldown --steps 1000   # a copy of the checkpoint trained on at a decaying lr
    python scripts/campaign.py measure --limit 8    # checkpoint vs the newest shipped version on Kodak (BD-rate)
    python scripts/campaign.py export --quality-range 0 4   # install the checkpoint as a new model version
    python scripts/campaign.py measure --checkpoint runs/gpu/checkpoint.pt   # a GPU run's weights (scripts/train_gpu.sh)
    python scripts/campaign.py measure --model elic-context-hyperprior-m192 --baseline elic-context-hyperprior \
        --checkpoint runs/ab/wide/checkpoint.pt    # a new model against another model's shipped weights

All take ``--model ID`` (default: the campaign model below). A run lives in ``runs/campaign/<id>/``
and resumes from its checkpoint; on a machine without one it continues the committed state
``campaign/<id>.pt`` (``save``: float16 weights, step and lineage, no optimizer moments) when that
state continues the newest weights version, else it starts from the newest version. The campaign trains at a constant learning rate; the weights a
version ships are a ``cooldown``: a copy of its checkpoint in ``runs/campaign/<id>-cooldown-<step>-<decay><steps>/``
trained on in the foreground at a decaying lr while the campaign goes on. ``measure`` installs the checkpoint as a candidate version in a
scratch weights folder and runs ``scripts/eval_rd.py`` on both versions with the same images and
qualities; ``export`` does the same install into ``weights/`` (a new ``<id>@N.safetensors``;
old versions stay installed), after which ``scripts/make_golden.py`` writes its golden file and
``scripts/eval_rd.py --models <id> --update-manifest`` records its Kodak RD.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from neuralcodec.errors import CheckpointError, NeuralCodecError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = "elic-context-hyperprior"  # best shipped model: the one the campaign trains
# Fixed per model so that a resumed run continues the same recipe (see docs/benchmarks.md).
# 4 x 256² crops since session 24 (a cooldown on them gained 3.7 % where 16 x 128² gained 1.0 %; same time per step).
RECIPE = {"lr": 2e-4, "decay_at": 1.0, "steps": 1_000_000, "eval_every": 2000, "batch": 4, "crop": 256, "threads": 1}


def run_dir(model: str) -> Path:
    return ROOT / "runs" / "campaign" / model


def state_path(model: str) -> Path:
    """The campaign state ``save`` writes and a new machine's ``start`` continues (committed)."""
    return ROOT / "campaign" / f"{model}.pt"


def _pid(model: str) -> int | None:
    path = run_dir(model) / "pid"
    if not path.exists():
        return None
    pid = int(path.read_text())
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    return pid


def _train_args(model: str) -> list[str]:
    """train.py flags: the run's own config when resuming; on a machine without the run, the
    recipe from the committed state (copied in as the run's checkpoint) or the newest weights."""
    out = run_dir(model)
    config = out / "config.json"
    if (out / "checkpoint.pt").exists() and config.exists():
        cfg = json.loads(config.read_text())
        keys = ["model", "out", "init", "lr", "decay_at", "steps", "eval_every", "fresh_lr", "batch", "crop"]
        args = [f"--{k}={cfg[k]}" for k in keys if cfg.get(k) not in (None, "", 0, 0.0)]
        return args + [f"--threads={RECIPE['threads']}"]
    from neuralcodec.models.manifest import find_version, weights_dir

    root = seed(model, out)  # the run the committed state saved goes on here, from its own warm start
    init = weights_dir() / (root or find_version(model))["file"]
    return [f"--model={model}", f"--out={out}", f"--init={init}"] + [f"--{k}={v}" for k, v in RECIPE.items()]


def seed(model: str, out: Path, state: Path | None = None) -> dict | None:
    """Copy the campaign state (default: the committed ``campaign/<id>.pt``) into the run folder
    ``out`` as its checkpoint when it continues the newest version; train.py then resumes it at
    its step with fresh moments. Returns the version the state trained from, or None (nothing
    copied). ``start`` on a new machine and scripts/train_gpu.sh both begin here."""
    from neuralcodec.models.manifest import find_version

    newest = find_version(model)
    if newest is None:
        raise SystemExit(f"campaign: no committed weights for '{model}' to start from")
    state = state or state_path(model)
    if (root := _committed_root(model, newest, state)) is not None:
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(state, out / ".checkpoint.tmp")  # then a rename: a run's checkpoint is never half-written
        os.replace(out / ".checkpoint.tmp", out / "checkpoint.pt")
    return root


def _committed_root(model: str, newest: dict, path: Path | None = None) -> dict | None:
    """The version the campaign state ``path`` (default: the committed one) trained from (its
    lineage's warm start) when that state continues ``newest``: it trained from ``newest`` itself,
    or ``newest`` is a cooldown branched from the same run at a step the state has reached (a state
    saved before the branch would lose steps that ``newest`` has). Else None, with a note when
    there is a state."""
    from neuralcodec.models.manifest import find_version
    from neuralcodec.train.loop import read_checkpoint

    path = path or state_path(model)
    if not path.exists():
        return None
    ck = read_checkpoint(path, keys=("model", "config", "step", "lineage"))
    root = find_version(model, sha256=ck["lineage"].get("init_sha256", ""))  # "": a run from no file
    branch = newest["training"].get("runs_from", [0])[-1]  # recorded by exports since @21
    if root is not None and (root["version"] == newest["version"]
                             or (newest["training"].get("init", "").startswith(f"{model}@{root['version']} ")
                                 and ck["step"] >= branch)):
        print(f"campaign: continuing {path} (step {ck['step']:,}, trained from {model}@{root['version']})")
        return root
    print(f"campaign: note: {path} does not continue {model}@{newest['version']}; starting from that version")
    return None


def start(model: str) -> None:
    if (pid := _pid(model)) is not None:
        print(f"campaign for {model} is already running (pid {pid}); `status` shows its progress")
        return
    out = run_dir(model)
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), *_train_args(model)]
    log = open(out / "train.out", "a")
    env = {**os.environ, "OMP_NUM_THREADS": str(RECIPE["threads"])}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env, start_new_session=True)
    (out / "pid").write_text(str(proc.pid))
    print(f"campaign for {model} started (pid {proc.pid}): {' '.join(cmd[1:])}\nlog: {out / 'log.jsonl'}")


def status(model: str) -> None:
    out = run_dir(model)
    log = out / "log.jsonl"
    if state_path(model).exists():
        from neuralcodec.train.loop import read_checkpoint

        step = read_checkpoint(state_path(model))["step"]
        print(f"committed state: {state_path(model)} at step {step:,} (`save` updates it)")
    if not log.exists():
        print(f"no campaign run for {model} in {out}")
        return
    recs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    steps = [r for r in recs if "loss" in r]
    probes = [r for r in recs if "kodak" in r]
    pid = _pid(model)
    print(f"{model}: {'running, pid ' + str(pid) if pid else 'not running'}; step {steps[-1]['step'] if steps else 0}")
    if len(steps) >= 2 and steps[-1]["sec"] > steps[-2]["sec"]:
        rate = (steps[-1]["step"] - steps[-2]["step"]) / (steps[-1]["sec"] - steps[-2]["sec"])
        print(f"  {rate:.2f} steps/s; last window: bpp {steps[-1]['bpp']:.3f}, PSNR {steps[-1]['psnr']:.2f} dB (training crops)")
    hours, total, last = {}, 0.0, 0.0  # wall time up to each step; 'sec' restarts at every resume
    segments: list[list[dict]] = []  # one per (re)start, for its mean speed
    for r in recs:
        if "sec" in r:
            if not segments or r["sec"] < last:
                segments.append([])
            segments[-1].append(r)
            total += r["sec"] - last if r["sec"] >= last else r["sec"]
            last = r["sec"]
        hours[r["step"]] = total / 3600
    for seg in segments[-4:]:
        a, b = seg[0], seg[-1]
        if b["sec"] > a["sec"]:
            print(f"  steps {a['step']}-{b['step']}: {(b['step'] - a['step']) / (b['sec'] - a['sec']):.2f} steps/s "
                  "(one start of the run, probes included)")
    for r in probes[-8:]:
        pts = ", ".join(f"q{p['quality']:g} {p['bpp']:.3f} bpp {p['psnr']:.2f} dB" for p in r["kodak"])
        print(f"  step {r['step']} ({hours[r['step']]:.2f} h): Kodak probe {pts}")


def stop(model: str) -> None:
    pid = _pid(model)
    if pid is None:
        print(f"campaign for {model} is not running")
        return
    os.killpg(pid, signal.SIGTERM)  # the last checkpoint (every 250 steps) is where it resumes
    print(f"stopped {model} (pid {pid}); `start` resumes from {run_dir(model) / 'checkpoint.pt'}")


def save(model: str) -> Path:
    """Write the campaign's weights (float16 as a shipped version stores them), step, config and
    lineage to ``campaign/<id>.pt``, atomically; returns its path. The optimizer's moments stay
    behind (3x the size): a run continued from the state rebuilds them."""
    from neuralcodec.models.registry import get_spec
    from neuralcodec.models.weights import half_state, load_state
    from neuralcodec.train.loop import read_checkpoint, save_atomic

    ck = read_checkpoint(run_dir(model) / "checkpoint.pt", keys=("model", "config", "step", "lineage"))
    net = get_spec(ck["config"]["model"]).build()
    load_state(net, ck["model"])
    path = state_path(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_atomic({"model": half_state(net), **{k: ck[k] for k in ("step", "config", "lineage")}}, path)
    print(f"saved {path} ({path.stat().st_size / 2**20:.1f} MiB), step {ck['step']:,}: "
          "commit it so that a new machine's `start` continues from there")
    return path


def _checkpoint(model: str, path: str | None) -> Path:
    """The checkpoint to measure or export, read once so a bad one stops here with one line."""
    from neuralcodec.train.loop import read_checkpoint

    checkpoint = Path(path) if path else run_dir(model) / "checkpoint.pt"
    read_checkpoint(checkpoint)
    return checkpoint


def _install(model: str, folder: Path | None, checkpoint: Path, quality_range: list[float] | None = None,
             default_quality: float | None = None) -> str:
    """Install a checkpoint as a new version of ``model`` in ``folder`` (default ``weights/``) with
    scripts/export_weights.py; returns the new version's ref."""
    from neuralcodec.models.manifest import find_version, read_manifest, weights_dir

    cmd = [sys.executable, str(ROOT / "scripts" / "export_weights.py"), str(checkpoint)]
    cmd += ["--out", str(folder)] if folder else []
    cmd += ["--quality-range", *map(str, quality_range)] if quality_range else []
    cmd += ["--default-quality", str(default_quality)] if default_quality is not None else []
    if subprocess.run(cmd, cwd=ROOT).returncode:
        raise SystemExit(f"campaign: could not install {checkpoint} (export_weights.py said why above)")
    return f"{model}@{find_version(model, manifest=read_manifest(folder or weights_dir()))['version']}"


def measure(model: str, limit: int, qualities: list[float] | None, checkpoint: Path, baseline: str | None = None) -> None:
    from neuralcodec.models.manifest import find_version, parse_ref, read_manifest, weights_dir

    base_id, base_version = parse_ref(baseline or model)
    current = find_version(base_id, version=base_version)
    if current is None:
        raise SystemExit(f"campaign: no installed weights for '{baseline or model}' to measure against (--baseline ID[@N])")
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for f in weights_dir().iterdir():
            (scratch / f.name).symlink_to(f) if f.suffix == ".safetensors" else shutil.copy(f, scratch / f.name)
        os.environ["NEURALCODEC_WEIGHTS"] = str(scratch)
        q = [float(v) for v in current.get("quality_range", [0, 2])]
        grid = qualities or [round(q[0] + i * (q[1] - q[0]) / 5, 3) for i in range(6)]
        candidate = _install(model, scratch, checkpoint, [min(grid + q), max(grid + q)])
        base = f"{base_id}@{current['version']}"
        if max(grid) > q[1] or min(grid) < q[0]:  # the shipped version is measured inside its range only
            base_grid = [g for g in grid if q[0] <= g <= q[1]]
            raise SystemExit(f"campaign: qualities outside {base}'s shipped range {q}; use {base_grid}")
        out = checkpoint.parent / "measure"  # beside the checkpoint: measures of two checkpoints can run at once
        cmd = [sys.executable, str(ROOT / "scripts" / "eval_rd.py"), "--models", base, candidate, "--baseline", base,
               "--limit", str(limit), "--qualities", *map(str, grid), "--codecs", "webp", "--out", str(out)]
        print(" ".join(cmd[1:]))
        subprocess.run(cmd, check=True, cwd=ROOT, env=os.environ)
    bd = json.loads((out / "rd.json").read_text())["bd_rate"][candidate]
    from neuralcodec.train.loop import read_checkpoint

    step = read_checkpoint(checkpoint)["step"]
    print(f"\ncandidate {candidate} ({checkpoint}, step {step}): "
          f"vs {base} PSNR {bd[f'vs_{base}']['psnr']:+.1f} %, vs WebP {bd['vs_webp']['psnr']:+.1f} %")


def cooldown(model: str, steps: int, decay: str, threads: int = 1, crop: int | None = None, batch: int | None = None) -> Path:
    """Copy the campaign's checkpoint to ``runs/campaign/<id>-cooldown-<step>-<decay><steps>/`` and
    train it ``steps`` more at a decaying lr (``decay`` step: a tenth of the campaign's; linear:
    falling toward 0) on ``threads`` threads (2 while the campaign is stopped), with the campaign's
    crops unless ``crop``/``batch`` say otherwise (the folder's name then ends in ``-crop<C>x<B>``);
    returns the copy's checkpoint. Rerun, it resumes an unfinished one."""
    from neuralcodec.train.loop import read_checkpoint

    if threads > RECIPE["threads"] and _pid(model):
        print(f"campaign: note: the campaign of {model} is running; {threads} cooldown threads will share its core")

    src = run_dir(model)
    if not (src / "checkpoint.pt").exists():
        raise SystemExit(f"campaign: no checkpoint in {src} to cool down")
    cfg = json.loads((src / "config.json").read_text())  # the campaign's lr, recipe, data and init
    crops = {k: v for k, v in (("crop", crop), ("batch", batch)) if v and v != cfg[k]}
    cfg.update(crops)
    tag = f"{decay}{steps}" + (f"-crop{cfg['crop']}x{cfg['batch']}" if crops else "")
    unfinished = [d for d in src.parent.glob(f"{model}-cooldown-*-{tag}") if (d / "config.json").exists()
                  and read_checkpoint(d / "checkpoint.pt")["step"] < json.loads((d / "config.json").read_text())["steps"]]
    if unfinished:  # an interrupted cooldown of the same shape resumes, whatever the campaign did since
        out = unfinished[0]
        step = json.loads((out / "config.json").read_text())["steps"] - steps
    else:
        tmp = src.parent / f".{model}-cooldown.tmp"
        shutil.copy(src / "checkpoint.pt", tmp)  # a copy first: the campaign rewrites its checkpoint
        try:
            step = read_checkpoint(tmp)["step"]
        except CheckpointError:
            tmp.unlink()
            raise
        out = src.parent / f"{model}-cooldown-{step}-{tag}"
        out.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out / "checkpoint.pt")
    cfg.update(out=str(out), decay_at=step / (step + steps), decay=decay, steps=step + steps, eval_every=0)
    flags = [f"--{k}={v}" for k, v in cfg.items() if not isinstance(v, list)]
    flags += [a for k, v in cfg.items() if isinstance(v, list) and v for a in (f"--{k}", *map(str, v))]
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), *flags, f"--threads={threads}"]
    print(f"cooldown of {model} from step {step}: {' '.join(cmd[1:])}")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    try:
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    except subprocess.CalledProcessError:
        if not (out / "config.json").exists():  # train.py refused the settings: leave no copy behind
            shutil.rmtree(out)
        raise
    print(f"next: python scripts/campaign.py measure --checkpoint {out / 'checkpoint.pt'}")
    return out / "checkpoint.pt"


def export(model: str, quality_range: list[float] | None, default_quality: float | None, checkpoint: Path) -> None:
    ref = _install(model, None, checkpoint, quality_range, default_quality)
    print(f"installed {ref}; next: python scripts/make_golden.py && python scripts/eval_rd.py --models "
          f"{model} --update-manifest, then commit weights/ and tests/golden/")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["start", "status", "stop", "save", "seed", "cooldown", "measure", "export"])
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--limit", type=int, default=8, help="measure: first N Kodak images")
    p.add_argument("--qualities", type=float, nargs="+", help="measure: default 6 over the shipped range")
    p.add_argument("--quality-range", type=float, nargs=2, help="export: qualities the new version is shipped for")
    p.add_argument("--default-quality", type=float)
    p.add_argument("--checkpoint", help="measure/export: another checkpoint (e.g. from scripts/train_gpu.sh); "
                   "seed: the state to continue (default campaign/<id>.pt)")
    p.add_argument("--run", help="seed: the run folder that continues the state (scripts/train_gpu.sh)")
    p.add_argument("--steps", type=int, default=1000, help="cooldown: steps at the decaying lr")
    p.add_argument("--decay", choices=["step", "linear"], default="step", help="cooldown: lr shape (train.py --decay)")
    p.add_argument("--crop", type=int, help="cooldown: crop size (default: the campaign's)")
    p.add_argument("--batch", type=int, help="cooldown: crops per step (default: the campaign's)")
    p.add_argument("--threads", type=int, default=RECIPE["threads"], help="cooldown: torch threads (2 while the campaign is stopped)")
    p.add_argument("--baseline", help="measure: the shipped version to compare with, ID[@N] (default: the model's newest)")
    a = p.parse_args()
    try:
        dispatch(a)
    except NeuralCodecError as e:  # a bad checkpoint (CheckpointError), an unknown model: one line
        raise SystemExit(f"campaign: {e}")
    except subprocess.CalledProcessError as e:  # train.py / eval_rd.py said why, unless a signal killed it
        why = f"was killed by signal {-e.returncode}" if e.returncode < 0 else f"failed (exit {e.returncode}); its message is above"
        raise SystemExit(f"campaign: {Path(e.cmd[1]).name} {why}")
    except BrokenPipeError:  # `campaign.py status | head`: stop quietly, as ncodec does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(1)


def dispatch(a: argparse.Namespace) -> None:
    if a.action == "measure":
        measure(a.model, a.limit, a.qualities, _checkpoint(a.model, a.checkpoint), a.baseline)
    elif a.action == "cooldown":
        cooldown(a.model, a.steps, a.decay, a.threads, a.crop, a.batch)
    elif a.action == "seed":
        if not a.run:
            raise SystemExit("campaign: seed needs --run DIR")
        if seed(a.model, Path(a.run), _checkpoint(a.model, a.checkpoint) if a.checkpoint else None) is None:
            raise SystemExit(f"campaign: nothing copied to {a.run}")
    elif a.action == "export":
        export(a.model, a.quality_range, a.default_quality, _checkpoint(a.model, a.checkpoint))
    else:
        {"start": start, "status": status, "stop": stop, "save": save}[a.action](a.model)


if __name__ == "__main__":
    main()
