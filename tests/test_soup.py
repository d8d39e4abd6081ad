"""scripts/soup.py: the uniform average of a checkpoint's and an installed version's weights."""

import subprocess
import sys

import torch

from neuralcodec.models.weights import load_model

from .conftest import ROOT

MODEL = "mean-scale-hyperprior"


def _soup(*args):
    return subprocess.run([sys.executable, "scripts/soup.py", *map(str, args)], cwd=ROOT, capture_output=True, text=True)


def test_soup_averages_floats_keeps_the_first_sources_step_and_names_its_sources(tmp_path):
    shipped = load_model(MODEL).model.state_dict()
    shifted = {k: v.float() + 1.0 if v.is_floating_point() else v for k, v in shipped.items()}
    ck = tmp_path / "a.pt"
    torch.save({"model": shifted, "step": 7, "config": {"model": MODEL}, "lineage": {"runs": []}}, ck)
    r = _soup(ck, MODEL, "--out", tmp_path / "soup.pt")
    assert r.returncode == 0, r.stderr
    soup = torch.load(tmp_path / "soup.pt", weights_only=True)
    assert soup["step"] == 7 and soup["lineage"]["soup"] == [str(ck), MODEL]
    for k, v in shipped.items():
        want = v.float() + 0.5 if v.is_floating_point() else v
        assert torch.allclose(soup["model"][k], want, atol=1e-3), k  # the shipped weights are float16


def test_soup_refuses_another_model_and_a_missing_source_in_one_line(tmp_path):
    ck = tmp_path / "a.pt"
    torch.save({"model": load_model(MODEL).model.state_dict(), "step": 1, "config": {}}, ck)
    for source, why in (("factorized-prior", "holds other tensors"), (f"{MODEL}@99", "neither a checkpoint")):
        r = _soup(ck, source, "--out", tmp_path / "soup.pt")
        assert r.returncode == 1 and r.stderr.strip().startswith("soup: ") and why in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "soup.pt").exists()
