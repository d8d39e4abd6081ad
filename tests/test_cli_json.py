"""`ncodec encode/decode --json`: one JSON object per file on stdout, errors still on stderr."""

import json

import pytest
from PIL import Image

from neuralcodec import read_header

from .conftest import SAMPLES, run_cli


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    im = Image.open(SAMPLES / "chelsea.png").convert("RGB")
    im.crop((100, 50, 164, 98)).save(d / "a.png")
    im.crop((0, 0, 48, 32)).save(d / "b.png")
    return d


def records(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_encode_prints_one_object_per_file(pngs, tmp_path):
    res = run_cli("encode", str(pngs), "-o", str(tmp_path), "--quality", "0.5", "--json")
    assert res.returncode == 0, res.stderr
    out = records(res.stdout)
    assert [r["input"] for r in out] == [str(pngs / "a.png"), str(pngs / "b.png")]
    for r in out:
        data = open(r["output"], "rb").read()
        h = read_header(data)
        assert r["bytes"] == len(data) and r["bpp"] == len(data) * 8 / (h.width * h.height)
        assert (r["quality"], r["model"], r["version"]) == (0.5, h.model_id, "1.1")
        assert r["seconds"] > 0 and "psnr" not in r


def test_encode_verify_adds_psnr(pngs, tmp_path):
    res = run_cli("encode", str(pngs / "a.png"), "-o", str(tmp_path / "a.ncf"), "--verify", "--json")
    (r,) = records(res.stdout)
    assert 20 < r["psnr"] < 60


def test_decode_prints_one_object_per_file(pngs, tmp_path):
    run_cli("encode", str(pngs / "a.png"), "-o", str(tmp_path / "a.ncf"))
    res = run_cli("decode", str(tmp_path / "a.ncf"), "-o", str(tmp_path / "a.png"), "--json")
    assert res.returncode == 0, res.stderr
    (r,) = records(res.stdout)
    assert r["input"] == str(tmp_path / "a.ncf") and r["output"] == str(tmp_path / "a.png")
    assert (r["width"], r["height"], r["bytes"]) == (64, 48, (tmp_path / "a.ncf").stat().st_size)
    assert Image.open(r["output"]).size == (64, 48)


def test_failed_input_gets_an_error_object_and_the_usual_exit(pngs, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.ncf").write_bytes(b"\x89NCF")
    run_cli("encode", str(pngs / "a.png"), "-o", str(tmp_path / "in" / "good.ncf"))
    res = run_cli("decode", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--json")
    assert res.returncode == 1
    bad, good = records(res.stdout)
    assert bad["input"].endswith("bad.ncf") and "truncated" in bad["error"] and "bytes" not in bad
    assert "error" not in good and good["width"] == 64
    assert res.stderr.count("ncodec: error:") == 1 and "bad.ncf: file is truncated" in res.stderr


def test_json_on_video_is_refused_not_ignored(tmp_path):
    from .conftest import ROOT

    res = run_cli("decode", str(ROOT / "tests" / "golden" / "video" / "v1.0-stem-msh.ncv"), "-o", str(tmp_path / "f/"), "--json")
    assert res.returncode == 2 and "--json is for images" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
