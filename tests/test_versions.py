"""Model versions: retrained weights are a new version; every installed version keeps decoding."""

import json
import shutil

import pytest
import torch

import neuralcodec as nc
from neuralcodec.errors import ModelError, WeightsMismatchError
from neuralcodec.models import get_spec
from neuralcodec.models.manifest import add_version, parse_ref, read_manifest, versions, weights_dir
from neuralcodec.models.weights import _load_version, export_weights, load_model

from .conftest import crop, run_cli

MODEL = "factorized-prior"  # the smallest shipped weights


@pytest.fixture
def two_versions(tmp_path, monkeypatch):
    """A weights folder holding the shipped factorized prior as @1 and perturbed weights as @2."""
    entry = read_manifest()["models"][MODEL]
    shutil.copy(weights_dir() / entry["file"], tmp_path / entry["file"])
    (tmp_path / "manifest.json").write_text(json.dumps({"models": {MODEL: entry}}))
    monkeypatch.setenv("NEURALCODEC_WEIGHTS", str(tmp_path))
    _load_version.cache_clear()
    model = get_spec(MODEL).build()
    from neuralcodec.models.weights import load_state
    from safetensors.torch import load_file

    load_state(model, load_file(str(tmp_path / entry["file"])))
    with torch.no_grad():
        model.g_s[0].weight.mul_(1.05)  # "retrained": other synthesis weights
    info = {k: entry[k] for k in ("quality_range", "default_quality")}
    export_weights(model, MODEL, info, folder=tmp_path)
    yield tmp_path
    _load_version.cache_clear()


def test_retrained_weights_install_as_a_new_version(two_versions):
    vs = versions(MODEL)
    assert [v["version"] for v in vs] == [1, 2]
    assert vs[1]["file"] == f"{MODEL}@2.safetensors" and vs[0]["sha256"] != vs[1]["sha256"]
    assert load_model(MODEL).version == 2 and load_model(f"{MODEL}@1").version == 1


def test_every_version_decodes_its_own_files(two_versions, photo):
    im = crop(photo, 64, 48)
    old = nc.encode_image(im, model=f"{MODEL}@1", reconstruct=True)
    new = nc.encode_image(im, model=MODEL, reconstruct=True)  # the plain id encodes with the newest
    assert old.header.weights_digest == load_model(f"{MODEL}@1").digest
    assert new.header.weights_digest == load_model(f"{MODEL}@2").digest
    assert (nc.decode(old.data).rgb == old.rgb).all() and (nc.decode(new.data).rgb == new.rgb).all()
    assert old.header.model_id == new.header.model_id == MODEL  # the digest names the version


def test_file_of_an_uninstalled_version_names_what_is_installed(two_versions, photo):
    im = crop(photo, 64, 48)
    old, new = (nc.encode_image(im, model=f"{MODEL}@{v}").data for v in (1, 2))
    manifest = read_manifest(two_versions)
    manifest["models"][MODEL].pop("previous")  # uninstall @1
    (two_versions / "manifest.json").write_text(json.dumps(manifest))
    _load_version.cache_clear()
    nc.decode(new)
    with pytest.raises(WeightsMismatchError, match="installed versions: @2"):
        nc.decode(old)
    with pytest.raises(ModelError, match="no version 1"):
        load_model(f"{MODEL}@1")


def test_file_of_unknown_weights_is_refused_with_installed_versions(photo):
    from neuralcodec import bitstream
    import dataclasses

    c = bitstream.unpack(nc.encode_image(crop(photo, 64, 48), model=MODEL).data)
    forged = bitstream.pack(dataclasses.replace(c.header, weights_digest=bytes(32)), c.sections)
    with pytest.raises(WeightsMismatchError, match="installed versions: @1"):
        nc.decode(forged)


def test_refs_and_manifest_bookkeeping():
    assert parse_ref("a@3") == ("a", 3) and parse_ref("a") == ("a", None)
    for bad in ("a@", "a@0", "a@x"):
        with pytest.raises(ValueError):
            parse_ref(bad)
    m = {"models": {}}
    add_version(m, "a", {"file": "a.safetensors", "sha256": "11"})
    add_version(m, "a", {"file": "a@2.safetensors", "sha256": "22"})
    add_version(m, "a", {"file": "a@2.safetensors", "sha256": "22", "kodak_rd": [1]})  # same weights: refresh
    assert [(v["version"], v["sha256"]) for v in versions("a", m)] == [(1, "11"), (2, "22")]
    assert m["models"]["a"]["kodak_rd"] == [1]
    with pytest.raises(ValueError, match="already version 1"):
        add_version(m, "a", {"file": "x", "sha256": "11"})


def test_models_command_lists_versions(two_versions):
    out = json.loads(run_cli("models", "--json").stdout)
    row = next(r for r in out if r["id"] == MODEL)
    assert [v["version"] for v in row["versions"]] == [2, 1]


def test_trajectory_counts_steps_back_through_the_warm_starts():
    """scripts/trajectory.py: a version's steps in all are its own plus those of the version it
    started from, whether its record names that version by ref or by file."""
    import importlib.util

    from .conftest import ROOT

    spec = importlib.util.spec_from_file_location("trajectory", ROOT / "scripts" / "trajectory.py")
    trajectory = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(trajectory)
    first = {"version": 1, "file": "m.safetensors", "training": {"steps": 5, "init": "x", "warm_start": {"steps": 7}}}
    by_file = {"m.safetensors": first}
    second = {"version": 2, "file": "m@2.safetensors", "training": {"steps": 10, "init": "weights/m.safetensors"}}
    by_version = {1: first, 2: second}
    third = {"version": 3, "training": {"steps": 100, "init": "m@2 (weights/m@2.safetensors, 10 steps)"}}
    assert trajectory.total_steps(first, by_file, by_version) == 12
    assert trajectory.total_steps(second, by_file, by_version) == 22
    assert trajectory.total_steps(third, by_file, by_version) == 122
