"""Training resumes exactly: N steps in one go equal N/2 steps, a restart, and N/2 more."""

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from neuralcodec.errors import CheckpointError
from neuralcodec.train.loop import TrainConfig, lambda_for_quality, lineage, sample_qualities, train

from .conftest import SAMPLES

ROOT = Path(__file__).resolve().parents[1]


def _config(tmp_path, out, steps):
    data = tmp_path / "data"
    if not data.exists():
        data.mkdir()
        Image.open(SAMPLES / "chelsea.png").convert("RGB").crop((0, 0, 200, 150)).save(data / "a.png")
        Image.open(SAMPLES / "coffee.png").convert("RGB").crop((0, 0, 100, 90)).save(data / "b.png")
    return TrainConfig(data=str(data), out=str(tmp_path / out), steps=steps, batch=2, crop=64,
                       checkpoint_every=2, log_every=1, seed=3)


@pytest.mark.parametrize("warm", [False, True])
def test_resume_is_exact(tmp_path, warm):
    """Also with a warm start whose fresh parameters train at their own learning rate."""
    extra = {}
    if warm:
        extra = {"model": "checkerboard-hyperprior", "fresh_lr": 1e-3,
                 "init": str(ROOT / "weights" / "mean-scale-hyperprior.safetensors")}
    cfg = lambda out, steps: dataclasses.replace(_config(tmp_path, out, steps), **extra)  # noqa: E731
    straight = torch.load(train(cfg("a", 4)), weights_only=True)
    train(cfg("b", 2))
    resumed = torch.load(train(cfg("b", 4)), weights_only=True)
    assert resumed["step"] == straight["step"] == 4
    for k, v in straight["model"].items():
        assert torch.equal(v, resumed["model"][k]), k


def test_checkpoint_is_plain_data(tmp_path):
    """A checkpoint unpickles nothing but tensors and plain containers (weights_only=True), and
    a warm start reads one the same way."""
    import pickle

    path = train(_config(tmp_path, "plain", 1))
    ck = torch.load(path, weights_only=True)
    assert {"model", "opt", "aux_opt", "gen", "rng", "step", "config"} <= set(ck)
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"model": _Evil()}, protocol=2))
    with pytest.raises(CheckpointError, match="UnpicklingError"):  # refused, not run (it would exit)
        train(dataclasses.replace(_config(tmp_path, "warm", 1), init=str(evil)))


class _Evil:
    def __reduce__(self):
        return (exec, ("raise SystemExit('pickle code ran')",))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_resume_restores_the_cuda_generator(tmp_path):
    """Training noise is drawn on the device: a resumed CUDA run ends with the same CUDA
    generator state as a straight one."""
    cfg = lambda out, steps: dataclasses.replace(_config(tmp_path, out, steps), device="cuda")  # noqa: E731
    straight = torch.load(train(cfg("a", 4)), weights_only=True)
    train(cfg("b", 2))
    resumed = torch.load(train(cfg("b", 4)), weights_only=True)
    assert torch.equal(straight["cuda_rng"], resumed["cuda_rng"])
    assert torch.equal(straight["rng"], resumed["rng"])


def test_lambda_interpolation_hits_trained_points():
    lams = [0.001, 0.004, 0.016]
    q = torch.tensor([1.0, 2.0, 3.0, 1.5])
    out = lambda_for_quality(q, lams)
    assert torch.allclose(out[:3], torch.tensor(lams))
    assert abs(out[3].item() - 0.002) < 1e-6


def test_ddp_two_processes_end_with_identical_weights(tmp_path):
    """`torchrun --nproc_per_node 2 scripts/train.py` (gloo on CPU): both ranks report the same
    state digest after training, and the run resumes like a single-process one."""
    import json
    from pathlib import Path

    cfg = _config(tmp_path, "ddp", 3)
    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           str(root / "scripts" / "train.py"), "--data", cfg.data, "--out", cfg.out, "--steps", "3",
           "--batch", "4", "--crop", "64", "--log_every", "1", "--checkpoint_every", "2", "--threads", "1"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    records = [json.loads(line) for line in (Path(cfg.out) / "log.jsonl").read_text().splitlines()]
    digests = [r for r in records if "rank_digests" in r][-1]["rank_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert torch.load(Path(cfg.out) / "checkpoint.pt", weights_only=True)["step"] == 3


def test_periodic_evaluation_codes_real_files(tmp_path):
    import dataclasses
    import json
    from pathlib import Path

    cfg = dataclasses.replace(_config(tmp_path, "ev", 2), eval_every=2, eval_images=1)
    cfg.eval_data = cfg.data
    train(cfg)
    probes = [json.loads(x) for x in (Path(cfg.out) / "log.jsonl").read_text().splitlines() if "kodak" in x]
    assert [p["step"] for p in probes] == [2]
    points = probes[0]["kodak"]
    assert [p["quality"] for p in points] == [1.0, 3.5, 6.0]
    assert all(p["bpp"] > 0 and 5 < p["psnr"] < 60 for p in points)


def test_ms_ssim_distortion_trains_and_needs_large_crops(tmp_path):
    import dataclasses

    import pytest

    cfg = dataclasses.replace(_config(tmp_path, "ms", 1), distortion="ms-ssim")
    with pytest.raises(ValueError, match="192"):
        train(cfg)
    cfg.crop = 192
    ck = torch.load(train(cfg), weights_only=True)
    assert ck["step"] == 1 and all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


def test_a_step_with_non_finite_gradients_is_skipped(tmp_path, monkeypatch):
    """One poisoned batch leaves the weights finite and is reported in the log; a run that only
    produces non-finite gradients stops with an error instead of training on garbage."""
    import json

    from neuralcodec.models.factorized import FactorizedPrior
    from neuralcodec.train import loop

    cfg = dataclasses.replace(_config(tmp_path, "nan", 3), model="factorized-prior")
    real, calls = FactorizedPrior.forward, []

    def poisoned(self, x, *args, **kw):
        calls.append(1)
        return real(self, x * float("nan") if len(calls) == 2 else x, *args, **kw)

    monkeypatch.setattr(FactorizedPrior, "forward", poisoned)
    ck = torch.load(train(cfg), weights_only=True)
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    log = [json.loads(line) for line in (tmp_path / "nan" / "log.jsonl").read_text().splitlines()]
    assert [r.get("skipped", 0) for r in log] == [0, 1, 0]

    monkeypatch.setattr(FactorizedPrior, "forward", lambda self, x, *a, **k: real(self, x * float("nan"), *a, **k))
    monkeypatch.setattr(loop, "MAX_BAD_STEPS", 2)
    with pytest.raises(FloatingPointError, match="2 steps in a row"):
        train(dataclasses.replace(cfg, out=str(tmp_path / "all-nan")))


def test_wall_time_limit_stops_with_a_checkpoint(tmp_path):
    """--minutes stops a run early (what a lent GPU's fixed budget needs) and resume continues."""
    cfg = dataclasses.replace(_config(tmp_path, "timed", 10_000), minutes=1e-6, checkpoint_every=1000)
    ck = torch.load(train(cfg), weights_only=True)
    assert 0 < ck["step"] < 10_000 and ck["step"] % 10 == 0


def test_train_only_changes_only_the_named_parameters(tmp_path):
    """A synthesis fine-tune (--train_only g_s.) leaves every other tensor as it started."""
    init = ROOT / "weights" / "mean-scale-hyperprior.safetensors"
    cfg = dataclasses.replace(_config(tmp_path, "syn", 2), init=str(init), train_only="g_s.")
    after = torch.load(train(cfg), weights_only=True)["model"]
    from safetensors.torch import load_file

    before = load_file(str(init))
    from neuralcodec.models.registry import get_spec

    params = {n for n, _ in get_spec("mean-scale-hyperprior").build().named_parameters()}  # not the table buffers
    changed = {k for k in params if not torch.equal(after[k].float(), before[k].float())}
    assert changed and all(k.startswith("g_s.") or k.endswith("quantiles") for k in changed), changed


def test_train_only_refuses_to_freeze_what_the_warm_start_did_not_initialize(tmp_path):
    init = ROOT / "weights" / "mean-scale-hyperprior.safetensors"  # has no context networks
    cfg = dataclasses.replace(_config(tmp_path, "cb", 1), model="checkerboard-hyperprior", init=str(init),
                              train_only="g_s.")
    with pytest.raises(ValueError, match="would freeze"):
        train(cfg)


def test_resume_with_another_train_only_is_refused(tmp_path):
    init = str(ROOT / "weights" / "mean-scale-hyperprior.safetensors")
    train(dataclasses.replace(_config(tmp_path, "r", 1), init=init, train_only="g_s."))
    with pytest.raises(ValueError, match="resume with the same setting"):
        train(dataclasses.replace(_config(tmp_path, "r", 2), init=init))


def test_train_only_matching_nothing_is_refused(tmp_path):
    with pytest.raises(ValueError, match="matches no parameter"):
        train(dataclasses.replace(_config(tmp_path, "none", 1), train_only="nothing."))


def test_warmup_ramps_the_learning_rate(tmp_path):
    train(dataclasses.replace(_config(tmp_path, "w", 4), warmup=4, lr=1e-4))
    import json

    lrs = [json.loads(line)["lr"] for line in open(tmp_path / "w" / "log.jsonl") if '"lr"' in line]
    assert lrs == pytest.approx([2.5e-5, 5e-5, 7.5e-5, 1e-4])


def test_linear_decay_ends_near_zero(tmp_path):
    train(dataclasses.replace(_config(tmp_path, "lin", 6), decay_at=0.5, decay="linear", lr=1e-4))
    import json

    lrs = [json.loads(line)["lr"] for line in open(tmp_path / "lin" / "log.jsonl") if '"lr"' in line]
    assert lrs == pytest.approx([1e-4, 1e-4, 1e-4, 1e-4, 2e-4 / 3, 1e-4 / 3])
    with pytest.raises(ValueError, match="decay must be one of"):
        train(dataclasses.replace(_config(tmp_path, "bad", 1), decay="cosine"))
    with pytest.raises(ValueError, match="--crop 80 is not a multiple of 64"):  # one line, not a shape error mid-step
        train(dataclasses.replace(_config(tmp_path, "bad", 1), crop=80))


def test_channels_last_is_a_layout_not_a_different_model(tmp_path):
    """Both layouts start from the same weights and train to the same result within float noise:
    Adam moves a weight by at most about lr per step whatever its gradient's size, so round-off
    that flips a tiny gradient's sign can differ by 2 * lr per step, never more."""
    cfg = _config(tmp_path, "nchw", 2)
    a = torch.load(train(dataclasses.replace(cfg, channels_last=0, precision="fp32")), weights_only=True)
    b = torch.load(train(dataclasses.replace(cfg, out=str(tmp_path / "nhwc"), channels_last=1, precision="fp32")),
                   weights_only=True)
    for k, v in a["model"].items():
        assert torch.allclose(v, b["model"][k], rtol=0, atol=2 * cfg.lr * cfg.steps * 1.01), k


def test_auto_precision_is_bf16_only_where_native(tmp_path):
    """The default --precision auto trains exactly as bf16 where the CPU computes bf16 natively
    (AVX512-BF16 or AMX) and as fp32 elsewhere, where emulated bf16 is several times slower."""
    from neuralcodec.models.determinism import fast_bf16

    native = fast_bf16("cpu")
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        assert native == bool({"avx512_bf16", "amx_tile"} & set(cpuinfo.read_text().split()))
    cfg = _config(tmp_path, "auto", 1)
    assert cfg.precision == "auto"
    a = torch.load(train(cfg), weights_only=True)
    b = torch.load(train(dataclasses.replace(cfg, out=str(tmp_path / "same"), precision="bf16" if native else "fp32")),
                   weights_only=True)
    c = torch.load(train(dataclasses.replace(cfg, out=str(tmp_path / "other"), precision="fp32" if native else "bf16")),
                   weights_only=True)
    assert all(torch.equal(v, b["model"][k]) for k, v in a["model"].items())
    assert not all(torch.equal(v, c["model"][k]) for k, v in a["model"].items())
    with pytest.raises(ValueError, match="precision must be one of"):
        train(dataclasses.replace(cfg, precision="fp16"))


def test_resume_takes_this_runs_learning_rate(tmp_path):
    """A branch resumed with another --lr / --aux_lr (e.g. a lower campaign lr) trains at those,
    not at the ones its checkpoint's optimizer state was saved with."""
    train(_config(tmp_path, "lr", 2))
    ck = torch.load(train(dataclasses.replace(_config(tmp_path, "lr", 3), lr=1e-5, aux_lr=2e-4)), weights_only=True)
    assert [g["lr"] for g in ck["opt"]["param_groups"]] == [1e-5]
    assert [g["lr"] for g in ck["aux_opt"]["param_groups"]] == [2e-4]


def test_quality_tilt_moves_samples_to_the_top():
    """tilt 0 draws qualities uniformly over [1, L] (mean 1 + (L - 1) / 2); tilt 1 with a linear
    ramp toward the top (mean 1 + 2 (L - 1) / 3), from the same random numbers."""
    flat = sample_qualities(100_000, 6, 0.0, torch.Generator().manual_seed(0))
    ramp = sample_qualities(100_000, 6, 1.0, torch.Generator().manual_seed(0))
    assert 1 <= flat.min() and flat.max() <= 6 and 1 <= ramp.min() and ramp.max() <= 6
    assert abs(flat.mean().item() - 3.5) < 0.02 and abs(ramp.mean().item() - (1 + 10 / 3)) < 0.02


@pytest.mark.parametrize("model", ["mean-scale-hyperprior", "elic-context-hyperprior"])
def test_rounded_rate_term_counts_the_files_bits(model):
    """--rate round scores the rounded latents the coder codes: deterministic, and within 5 % of
    the file's coded sections (the quantized CDFs and the coder's flush make the rest), where the
    noisy term overstates them (by 40 % or more here)."""
    from neuralcodec import bitstream, codec
    from neuralcodec.models.manifest import find_version
    from neuralcodec.models.registry import get_spec
    from neuralcodec.models.weights import verified_file
    from neuralcodec.train.loop import warm_start

    net = get_spec(model).build()
    warm_start(net, str(verified_file(find_version(model))[0]))
    net.train()
    image = Image.open(SAMPLES / "chelsea.png").convert("RGB").crop((0, 0, 448, 256))
    x = torch.from_numpy(__import__("numpy").asarray(image).copy()).permute(2, 0, 1)[None].float().div(255)
    bits = lambda out: sum(float(-torch.log2(out[k]).sum()) for k in ("y_likelihoods", "z_likelihoods"))  # noqa: E731
    with torch.no_grad():
        rounded = [bits(net(x, torch.tensor([1.5]), rate_round=True)) for _ in range(2)]
        noisy = bits(net(x, torch.tensor([1.5])))
    coded = 8 * sum(len(s) for s in bitstream.unpack(codec.encode_image(image, model, 1.5).data).sections)
    assert rounded[0] == rounded[1]
    assert abs(rounded[0] / coded - 1) < 0.05, (rounded[0], coded)
    assert noisy > 1.15 * coded, (noisy, coded)


def test_rounded_rate_term_needs_a_model_that_has_one(tmp_path):
    with pytest.raises(ValueError, match="no rounded rate term"):
        train(dataclasses.replace(_config(tmp_path, "f", 1), model="factorized-prior", rate="round"))
    with pytest.raises(ValueError, match="rate must be one of"):
        train(dataclasses.replace(_config(tmp_path, "g", 1), rate="exact"))


def test_lineage_follows_a_branch_to_its_export(tmp_path):
    """A learning-rate drop resumed from a copy of a campaign's checkpoint keeps the campaign's
    warm start (named as the shipped version its digest is), and the export records both runs
    and their summed wall time, not the drop's own --init and step count alone."""
    import json
    import shutil

    from neuralcodec.models.manifest import find_version

    init = ROOT / "weights" / "mean-scale-hyperprior.safetensors"
    campaign = _config(tmp_path, "campaign", 2)
    a = torch.load(train(dataclasses.replace(campaign, init=str(init))), weights_only=True)
    assert a["lineage"]["init_sha256"] == find_version("mean-scale-hyperprior")["sha256"]
    (tmp_path / "drop").mkdir()
    shutil.copy(tmp_path / "campaign" / "checkpoint.pt", tmp_path / "drop")
    drop = dataclasses.replace(campaign, out=str(tmp_path / "drop"), steps=3, lr=1e-5, batch=1, crop=128,
                               init=str(tmp_path / "campaign" / "checkpoint.pt"))
    b = torch.load(train(drop), weights_only=True)
    lin = b["lineage"]
    assert lin["init"] == str(init) and lin["init_sha256"] == a["lineage"]["init_sha256"]
    assert [(r["from"], r["out"], r["lr"]) for r in lin["runs"]] == [(0, campaign.out, campaign.lr), (2, drop.out, 1e-5)]
    assert lin["seconds"] > a["lineage"]["seconds"] > 0

    folder = tmp_path / "weights"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "export_weights.py"), str(tmp_path / "drop" / "checkpoint.pt"),
                    "--out", str(folder)], check=True, capture_output=True, cwd=ROOT)
    record = json.loads((folder / "manifest.json").read_text())["models"]["mean-scale-hyperprior"]["training"]
    version = find_version("mean-scale-hyperprior")["version"]
    assert record["init"].startswith(f"mean-scale-hyperprior@{version} (weights/mean-scale-hyperprior")
    assert record["steps"] == 3 and record["wall_seconds"] == round(lin["seconds"], 1) and record["runs_from"] == [0, 2]
    assert f"--out {campaign.out} --init weights/mean-scale-hyperprior.safetensors --lr" in record["command"]
    assert f"; then from its step-2 checkpoint: python scripts/train.py --model mean-scale-hyperprior --out {drop.out}" in record["command"]
    assert "--batch 2 --crop 64; then" in record["command"] and record["command"].endswith("--steps 3 --batch 1")  # crop 128: the default

    # a lineage saved before runs recorded their crops ran the default ones: resumed with them it adds no run
    old = torch.load(tmp_path / "campaign" / "checkpoint.pt", weights_only=True)
    for r in old["lineage"]["runs"]:
        del r["batch"], r["crop"]
    same = dataclasses.replace(campaign, init=str(init), batch=16, crop=128)
    assert [r["from"] for r in lineage(old, same, 2)["runs"]] == [0]
    assert [r["from"] for r in lineage(old, dataclasses.replace(same, crop=256), 2)["runs"]] == [0, 2]
    assert [r["from"] for r in lineage(a, dataclasses.replace(campaign, init=str(init), crop=128), 2)["runs"]] == [0, 2]


def _campaign_script():
    """scripts/campaign.py as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("campaign", ROOT / "scripts" / "campaign.py")
    campaign = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(campaign)
    return campaign


def test_campaign_cooldown_trains_a_copy_at_a_decaying_lr(tmp_path, monkeypatch):
    """`campaign.py cooldown` leaves the campaign's run alone and continues a copy of its
    checkpoint with the campaign's own data and recipe, the lr decaying to its last step."""
    import json

    campaign = _campaign_script()
    run = tmp_path / "campaign" / "mean-scale-hyperprior"
    cfg = dataclasses.replace(_config(tmp_path, "campaign/mean-scale-hyperprior", 2), lr=1e-4)
    before = torch.load(train(cfg), weights_only=True)
    monkeypatch.setattr(campaign, "run_dir", lambda model: tmp_path / "campaign" / model)
    path = campaign.cooldown("mean-scale-hyperprior", 3, "step")
    assert path == tmp_path / "campaign" / "mean-scale-hyperprior-cooldown-2-step3" / "checkpoint.pt"
    after = torch.load(path, weights_only=True)
    assert after["step"] == 5 and after["config"]["data"] == cfg.data and after["config"]["crop"] == cfg.crop
    assert [(r["from"], r["decay"]) for r in after["lineage"]["runs"]] == [(0, "step"), (2, "step")]
    lrs = [json.loads(x)["lr"] for x in (path.parent / "log.jsonl").read_text().splitlines() if '"lr"' in x]
    assert lrs == pytest.approx([1e-5] * 3)  # from its first step on, a tenth of the campaign's own lr
    assert torch.equal(torch.load(run / "checkpoint.pt", weights_only=True)["gen"], before["gen"])

    # an interrupted cooldown resumes in its own folder, even after the campaign moved on
    linear = run.parent / "mean-scale-hyperprior-cooldown-2-linear2"
    linear.mkdir()
    (linear / "checkpoint.pt").write_bytes((run / "checkpoint.pt").read_bytes())  # step 2, none trained yet
    (linear / "config.json").write_text(json.dumps({**before["config"], "out": str(linear), "steps": 4}))
    train(dataclasses.replace(cfg, steps=4))
    calls = []
    real_run = campaign.subprocess.run
    monkeypatch.setattr(campaign.subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw["env"])) or real_run(cmd, **kw))
    assert campaign.cooldown("mean-scale-hyperprior", 2, "linear", threads=2) == linear / "checkpoint.pt"
    assert torch.load(linear / "checkpoint.pt", weights_only=True)["step"] == 4
    assert calls[0][0][-1] == "--threads=2" and calls[0][1]["OMP_NUM_THREADS"] == "2"  # the campaign stopped: both cores

    # other crops than the campaign's: a folder of its own, the run's config untouched
    other = campaign.cooldown("mean-scale-hyperprior", 1, "step", crop=128, batch=1)
    assert other == run.parent / "mean-scale-hyperprior-cooldown-4-step1-crop128x1" / "checkpoint.pt"
    ck = torch.load(other, weights_only=True)
    assert (ck["step"], ck["config"]["crop"], ck["config"]["batch"]) == (5, 128, 1)
    assert (ck["lineage"]["runs"][-1]["crop"], ck["lineage"]["runs"][-1]["batch"]) == (128, 1)  # the export's command says so
    assert json.loads((run / "config.json").read_text())["crop"] == cfg.crop
    with pytest.raises(campaign.subprocess.CalledProcessError):  # train.py refuses the crop: no copy left behind
        campaign.cooldown("mean-scale-hyperprior", 1, "step", crop=100)
    assert not list(run.parent.glob("*-crop100x*"))


def test_a_checkpoint_from_before_lineages_gets_one_from_its_config(tmp_path):
    """The campaign's checkpoint written by code without lineages: a cooldown resumed from a
    copy names the warm start the old config did, and the wall time its log covers."""
    import shutil

    init = ROOT / "weights" / "mean-scale-hyperprior.safetensors"
    old = dataclasses.replace(_config(tmp_path, "old", 2), init=str(init))
    ck = torch.load(train(old), weights_only=True)
    del ck["lineage"]
    (tmp_path / "copy").mkdir()
    torch.save(ck, tmp_path / "copy" / "checkpoint.pt")
    shutil.copy(tmp_path / "old" / "log.jsonl", tmp_path / "copy" / "unrelated.jsonl")
    lin = torch.load(train(dataclasses.replace(old, out=str(tmp_path / "copy"), steps=3)), weights_only=True)["lineage"]
    assert lin["init"] == str(init) and len(lin["init_sha256"]) == 64
    assert [r["out"] for r in lin["runs"]] == [str(tmp_path / "old"), str(tmp_path / "copy")]
    assert lin["seconds"] > 0


def test_a_bad_checkpoint_stops_the_scripts_with_one_line(tmp_path):
    """A truncated, foreign or missing checkpoint: CheckpointError, and export_weights.py, train.py,
    train_video.py and campaign.py exit non-zero with one line instead of torch's traceback."""
    from neuralcodec.train.loop import read_checkpoint

    good = tmp_path / "good.pt"
    torch.save({"model": {}, "config": {}, "step": 3}, good)
    assert read_checkpoint(good)["step"] == 3
    truncated, foreign, empty = tmp_path / "truncated.pt", tmp_path / "foreign.pt", tmp_path / "empty.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    torch.save({"weights": torch.zeros(2)}, foreign)
    empty.write_bytes(b"")
    for path, says in [(truncated, "not a readable training checkpoint"), (foreign, r"no model, config, step\)"),
                       (empty, "not a readable training checkpoint"), (tmp_path / "missing.pt", "no such checkpoint")]:
        with pytest.raises(CheckpointError, match=says):
            read_checkpoint(path)
    run, video_run = tmp_path / "run", tmp_path / "video"
    run.mkdir()
    video_run.mkdir()
    (run / "checkpoint.pt").write_bytes(truncated.read_bytes())
    (video_run / "checkpoint.pt").write_bytes(good.read_bytes())  # an image run's: no optimizer states
    for cmd in (["export_weights.py", str(truncated), "--out", str(tmp_path / "w")],
                ["campaign.py", "measure", "--checkpoint", str(foreign)],
                ["train.py", "--model", "factorized-prior", "--out", str(run), "--steps", "1"],
                # no data: reading the checkpoint must come before building the latent cache
                ["train_video.py", "--out", str(run), "--data", str(tmp_path / "none"), "--photos", str(tmp_path / "none")],
                ["train_video.py", "--export", "--out", str(video_run)]):
        r = subprocess.run([sys.executable, str(ROOT / "scripts" / cmd[0]), *cmd[1:]], capture_output=True, text=True, cwd=ROOT)
        assert r.returncode != 0 and "Traceback" not in r.stderr, (cmd, r.stderr)
        line, = r.stderr.strip().splitlines()
        assert re.search(r"\.pt: (not a (readable )?training checkpoint|no such checkpoint)", line), line
    assert line.endswith("not a training checkpoint of this kind (no opt, aux_opt, gen)")  # an image run's


def test_a_failed_step_of_the_campaign_ends_in_one_line(monkeypatch):
    """train.py or eval_rd.py failing under `campaign.py` (they print their own message): one more
    line naming the script, no CalledProcessError traceback."""
    campaign = _campaign_script()

    def fails(a):
        raise subprocess.CalledProcessError(2, [sys.executable, str(ROOT / "scripts" / "eval_rd.py"), "--models"])

    monkeypatch.setattr(campaign, "dispatch", fails)
    monkeypatch.setattr(sys, "argv", ["campaign.py", "measure"])
    with pytest.raises(SystemExit, match=r"^campaign: eval_rd\.py failed \(exit 2\); its message is above$"):
        campaign.main()
    monkeypatch.setattr(campaign, "dispatch", lambda a: subprocess.run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"], check=True))
    with pytest.raises(SystemExit, match=r"^campaign: -c was killed by signal 9$"):
        campaign.main()


def test_a_bad_setting_stops_train_py_with_one_line_and_no_folder(tmp_path):
    out = tmp_path / "never"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--precision", "fp16", "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and r.stderr.strip() == "train: precision must be one of ('auto', 'bf16', 'fp32'), got 'fp16'"
    assert not out.exists()


def test_init_takes_a_model_ref_and_names_the_version_it_starts_from(tmp_path, capsys):
    """``--init ID`` warm-starts from the newest installed version, ``ID@N`` from version N, and a
    path to installed weights is named by its version: ``weights/ID.safetensors`` is version 1."""
    from neuralcodec.models.manifest import find_version, weights_dir
    from neuralcodec.train.loop import resolve_init

    msh = "mean-scale-hyperprior"
    newest = find_version(msh)
    assert resolve_init(msh, msh) == (str(weights_dir() / newest["file"]), f"{msh}@{newest['version']}")
    assert resolve_init(f"{msh}@1", msh)[0] == str(weights_dir() / find_version(msh, version=1)["file"])
    elic = "elic-context-hyperprior"
    plain = str(ROOT / "weights" / f"{elic}.safetensors")
    assert resolve_init(plain, elic) == (plain, f"{elic}@1, not the newest: @{find_version(elic)['version']}")
    for bad in ("no-such-file.safetensors", f"{msh}@999", f"{msh}@x"):
        with pytest.raises(ValueError, match="neither a file nor an installed model version"):
            resolve_init(bad, msh)
    cfg = dataclasses.replace(_config(tmp_path, "ref", 1), model="checkerboard-hyperprior", init=msh)
    train(cfg)
    assert f"({msh}@{newest['version']})" in capsys.readouterr().out
    ck = torch.load(tmp_path / "ref" / "checkpoint.pt", weights_only=True)
    assert ck["config"]["init"] == str(weights_dir() / newest["file"])  # the file, so a resume needs no manifest
    assert ck["lineage"]["init_sha256"] == newest["sha256"]


def test_a_truncated_weights_file_as_init_is_one_error(tmp_path):
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes((ROOT / "weights" / "mean-scale-hyperprior.safetensors").read_bytes()[:1000])
    cfg = dataclasses.replace(_config(tmp_path, "cut", 1), init=str(bad))
    with pytest.raises(CheckpointError, match="not a readable weights file"):
        train(cfg)
    assert not Path(cfg.out).exists()  # no empty run folder left behind


def test_campaign_status_into_a_closed_pipe_stops_quietly():
    """`campaign.py status | head`: a reader that went away ends the command without a traceback."""
    import os

    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first line
    try:
        proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "campaign.py"), "status", "--model", "no-such-run"],
                              stdout=w, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(w)
    assert proc.returncode == 1
    assert proc.stderr == ""


def test_campaign_state_carries_the_run_to_a_new_machine(tmp_path, monkeypatch, capsys):
    """`campaign.py save` keeps the campaign's weights (float16), step and lineage, not the
    optimizer's moments; on a machine without the run, `start` continues that state at its step
    and lineage with fresh moments. A state that does not continue the newest version is ignored."""
    from neuralcodec.models.manifest import find_version, weights_dir

    campaign = _campaign_script()
    model = "mean-scale-hyperprior"
    newest = weights_dir() / find_version(model)["file"]
    run = tmp_path / "campaign" / model
    monkeypatch.setattr(campaign, "run_dir", lambda m: tmp_path / "campaign" / m)
    monkeypatch.setattr(campaign, "state_path", lambda m: tmp_path / "state" / f"{m}.pt")
    cfg = dataclasses.replace(_config(tmp_path, f"campaign/{model}", 2), init=str(newest))
    before = torch.load(train(cfg), weights_only=True)

    path = campaign.save(model)
    state = torch.load(path, weights_only=True)
    assert sorted(state) == ["config", "lineage", "model", "step"] and state["step"] == 2
    assert state["lineage"] == before["lineage"]
    floats = {k: v.dtype for k, v in state["model"].items() if v.is_floating_point()}
    assert {d for k, d in floats.items() if not k.endswith(("quantiles", "scale_table"))} == {torch.float16}
    assert {d for k, d in floats.items() if k.endswith(("quantiles", "scale_table"))} == {torch.float32}
    assert path.stat().st_size < (run / "checkpoint.pt").stat().st_size / 4
    campaign.status(model)
    assert f"committed state: {path} at step 2 " in capsys.readouterr().out

    shutil.rmtree(run)  # a new machine: the committed state, no run
    run.mkdir(parents=True)
    args = campaign._train_args(model)
    assert {"--crop=256", "--batch=4"} <= set(args)  # a new run: the recipe's crops
    assert f"--init={newest}" in args and f"--out={run}" in args
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2
    capsys.readouterr()
    after = torch.load(train(dataclasses.replace(cfg, steps=3)), weights_only=True)
    assert "resumed from" in capsys.readouterr().out and after["step"] == 3
    assert after["lineage"]["init_sha256"] == before["lineage"]["init_sha256"]
    assert after["lineage"]["runs"][0] == before["lineage"]["runs"][0] and after["lineage"]["seconds"] > before["lineage"]["seconds"]
    assert {float(s["step"]) for s in after["opt"]["state"].values()} == {1.0}  # one step since the moments restarted
    assert {"--crop=64", "--batch=2"} <= set(campaign._train_args(model))  # a run resumes its own crops, not the recipe's

    v = find_version(model)["version"]
    branched = lambda at: {"version": v + 1, "training": {"init": f"{model}@{v} (...)", "runs_from": [0, at]}}  # noqa: E731
    assert campaign._committed_root(model, branched(2))["version"] == v  # a cooldown that left the run at step 2
    assert campaign._committed_root(model, branched(3)) is None  # ... at step 3: the state is behind it
    assert "does not continue" in capsys.readouterr().out

    state["lineage"]["init_sha256"] = "0" * 64  # trained from weights no version has
    torch.save(state, path)
    shutil.rmtree(run)
    run.mkdir(parents=True)
    assert f"--init={newest}" in campaign._train_args(model) and not (run / "checkpoint.pt").exists()
    assert "does not continue" in capsys.readouterr().out


def test_log_seconds_and_steps_per_second_read_each_start_of_a_run(tmp_path):
    from neuralcodec.train.loop import log_seconds, log_starts, log_steps_per_second

    log = tmp_path / "log.jsonl"
    assert log_starts(log) == [] and log_seconds(log) is None and log_steps_per_second(log) == 0.0
    recs = [{"step": 100, "sec": 10.0}, {"step": 200, "sec": 20.0}, {"step": 200, "kodak": []},  # first start
            {"step": 300, "sec": 4.0}, {"step": 500, "sec": 8.0}, {"step": 700, "sec": 12.0}]    # resumed
    log.write_text("".join(json.dumps(r) + "\n" for r in recs) + "\n")
    assert [len(s) for s in log_starts(log)] == [2, 3]
    assert log_seconds(log) == 32.0  # 20 + 12
    assert log_steps_per_second(log) == 50.0  # (700 - 300) / (12 - 4): the last start, its start-up left out
