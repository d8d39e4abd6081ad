"""The lent-GPU workflow end to end, dry-run on CPU: pack the photos, unpack a chunk, train with
scripts/train_gpu.sh from the newest weights, reassemble the weights it brings back, export them;
then continue a campaign state with it.
A GPU session has 15 minutes; none of them should go to a script that broke unnoticed."""

import io
import json
import os
import re
import subprocess
import sys
import tarfile

import torch

from neuralcodec.models.manifest import find_version

from .conftest import ROOT, SAMPLES


def test_gpu_script_dry_run_trains_from_the_newest_weights_and_brings_them_back(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("chelsea.png", "coffee.png"):
        (photos / name).symlink_to(SAMPLES / name)
    pack = tmp_path / "pack"
    subprocess.run([sys.executable, "scripts/make_train_pack.py", "--data", str(photos), "--out", str(pack),
                    "--crop", "96", "--per-image", "2", "--chunk-mib", "1"], check=True, capture_output=True, cwd=ROOT)
    unpacked = tmp_path / "unpacked"
    for chunk in sorted(pack.glob("pack-*.tar")):
        with tarfile.open(chunk) as tar:
            tar.extractall(unpacked, filter="data")
    assert len(list(unpacked.glob("*.webp"))) == 4

    model = "mean-scale-hyperprior"  # the script's default is the campaign's model; this one is quicker
    out, run = tmp_path / "back", tmp_path / "run"
    env = {**os.environ, "DEVICE": "cpu", "WHEELS": "none", "PYTHON": sys.executable, "BATCH": "2", "CROP": "64",
           "RUN": str(run), "OUT": str(out)}
    r = subprocess.run(["bash", "scripts/train_gpu.sh", str(unpacked), "0.001", model], env=env, cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    newest = find_version(model)
    assert f"({model}@{newest['version']})" in r.stdout  # named by the version it starts from

    parts = sorted(out.glob("weights.part-*"))
    assert parts and all(p.stat().st_size <= 15 << 20 for p in parts)
    ckpt = tmp_path / "checkpoint.pt"
    ckpt.write_bytes(b"".join(p.read_bytes() for p in parts))
    ck = torch.load(ckpt, weights_only=True)
    assert ck["step"] == 10  # --minutes is checked every 10 steps
    assert ck["config"]["precision"] == "auto" and ck["config"]["device"] == "cpu"
    assert ck["lineage"]["init_sha256"] == newest["sha256"]
    assert (out / "log.jsonl").exists()  # empty here: the script logs every 100 steps

    folder = tmp_path / "weights"
    subprocess.run([sys.executable, "scripts/export_weights.py", str(ckpt), "--out", str(folder)],
                   check=True, capture_output=True, cwd=ROOT)
    manifest = json.loads((folder / "manifest.json").read_text())["models"][model]
    assert manifest["training"]["steps"] == 10 and manifest["training"]["hardware"].startswith("2 CPU cores")
    on_gpu = tmp_path / "gpu.pt"  # the same weights as a GPU run would bring them back
    torch.save({**ck, "config": {**ck["config"], "device": "cuda"}}, on_gpu)
    subprocess.run([sys.executable, "scripts/export_weights.py", str(on_gpu), "--out", str(tmp_path / "weights_gpu")],
                   check=True, capture_output=True, cwd=ROOT)
    manifest = json.loads((tmp_path / "weights_gpu" / "manifest.json").read_text())["models"][model]
    assert manifest["training"]["hardware"] == "a CUDA GPU (the last run's device)"

    # a campaign state that continues the newest version (here: the weights just brought back) is
    # continued at its step, with its lineage, instead of restarting from the newest version
    again = tmp_path / "again"
    env.update(RUN=str(tmp_path / "run2"), OUT=str(again), STATE=str(ckpt))
    r = subprocess.run(["bash", "scripts/train_gpu.sh", str(unpacked), "0.001", model], env=env, cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"continuing {ckpt} (step 10, trained from {model}@{newest['version']})" in r.stdout
    assert "at step 10 (weights only" in r.stdout
    ck2 = torch.load(io.BytesIO(b"".join(p.read_bytes() for p in sorted(again.glob("weights.part-*")))), weights_only=True)
    assert ck2["step"] == 20 and ck2["lineage"]["runs"][0] == ck["lineage"]["runs"][0]
    assert ck2["lineage"]["init_sha256"] == newest["sha256"]


def test_gpu_script_cools_down_over_the_steps_that_fit_and_packs_jpeg_crops(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "chelsea.png").symlink_to(SAMPLES / "chelsea.png")
    pack = tmp_path / "pack"
    subprocess.run([sys.executable, "scripts/make_train_pack.py", "--data", str(photos), "--out", str(pack),
                    "--crop", "96", "--per-image", "2", "--chunk-mib", "1", "--jpeg", "90"], check=True,
                   capture_output=True, cwd=ROOT)
    unpacked = tmp_path / "unpacked"
    with tarfile.open(pack / "pack-000.tar") as tar:
        tar.extractall(unpacked, filter="data")
    crops = sorted(unpacked.glob("*.jpg"))
    assert len(crops) == 2
    from PIL import Image

    with Image.open(crops[0]) as im:
        assert im.size == (96, 96) and [layer[1:3] for layer in im.layer] == [(1, 1)] * 3  # 4:4:4

    model, out, run = "mean-scale-hyperprior", tmp_path / "back", tmp_path / "run"
    env = {**os.environ, "DEVICE": "cpu", "WHEELS": "none", "PYTHON": sys.executable, "BATCH": "2", "CROP": "64",
           "RUN": str(run), "OUT": str(out), "STATE": "none", "COOL": "0.05", "LOG_EVERY": "2"}
    r = subprocess.run(["bash", "scripts/train_gpu.sh", str(unpacked), "0.1", model], env=env, cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r"cooling down from step (\d+) over (\d+) steps", r.stdout)
    assert m, r.stdout[-2000:]
    step, n = map(int, m.groups())
    # phase 1's steps/s from its log records (every 2 steps here), 85 % of what fits in COOL's 3 s
    recs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if '"sec"' in line]
    first = [rec for rec in recs if rec["step"] <= step]
    rate = (first[-1]["step"] - first[0]["step"]) / (first[-1]["sec"] - first[0]["sec"])
    assert n == max(10, int(0.85 * rate * 60 * 0.05))
    ck = torch.load(io.BytesIO(b"".join(p.read_bytes() for p in sorted(out.glob("weights.part-*")))), weights_only=True)
    last = ck["lineage"]["runs"][-1]
    assert (last["from"], last["decay"], last["steps"]) == (step, "linear", step + n)
    assert ck["step"] == step + n or "the cooldown stopped at its time limit" in r.stdout  # a slow, loaded machine


def test_gpu_script_refuses_a_cooldown_as_long_as_the_training(tmp_path):
    env = {**os.environ, "DEVICE": "cpu", "WHEELS": "none", "PYTHON": sys.executable, "COOL": "1",
           "RUN": str(tmp_path / "run"), "OUT": str(tmp_path / "out"), "STATE": "none"}
    r = subprocess.run(["bash", "scripts/train_gpu.sh", str(tmp_path), "1", "mean-scale-hyperprior"], env=env, cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip() == "train_gpu: COOL (1) must be at least 0 and less than MINUTES (1)"
