"""`ncodec` through a real subprocess: outputs, refusals and one-line errors with non-zero exits."""

import dataclasses
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from neuralcodec import bitstream
from neuralcodec.models import DEFAULT_MODEL
from neuralcodec.models.weights import load_model

from .conftest import SAMPLES, run_cli
from .test_bitstream import absurd_dims, reheader


@pytest.fixture(scope="module")
def small_png(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    Image.open(SAMPLES / "chelsea.png").convert("RGB").crop((100, 50, 196, 130)).save(d / "cat.png")
    return d / "cat.png"


def assert_one_line_error(res):
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ncodec: error:"), res.stderr
    assert "Traceback" not in res.stderr


def test_encode_decode_info(small_png, tmp_path):
    ncf, png = tmp_path / "cat.ncf", tmp_path / "cat.png"
    res = run_cli("encode", str(small_png), "-o", str(ncf))
    assert res.returncode == 0, res.stderr
    assert "bpp" in res.stdout and ncf.exists()
    res = run_cli("decode", str(ncf), "-o", str(png))
    assert res.returncode == 0, res.stderr
    assert Image.open(png).size == (96, 80)
    info = json.loads(run_cli("info", str(ncf), "--json").stdout)
    assert info["width"] == 96 and info["bytes"] == ncf.stat().st_size
    assert info["quality"] == load_model(DEFAULT_MODEL).default_quality
    assert DEFAULT_MODEL in run_cli("info", str(ncf)).stdout


def test_decoded_file_equals_api_reconstruction(small_png, tmp_path):
    import neuralcodec as nc

    run_cli("encode", str(small_png), "-o", str(tmp_path / "a.ncf"), "--verify")
    run_cli("decode", str(tmp_path / "a.ncf"), "-o", str(tmp_path / "a.png"))
    enc = nc.encode_image(small_png, reconstruct=True)
    assert enc.data == (tmp_path / "a.ncf").read_bytes()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), enc.rgb)


def test_refuses_to_overwrite_without_force(small_png, tmp_path):
    out = tmp_path / "x.ncf"
    out.write_bytes(b"keep me")
    assert_one_line_error(run_cli("encode", str(small_png), "-o", str(out)))
    assert out.read_bytes() == b"keep me"
    assert run_cli("encode", str(small_png), "-o", str(out), "--force").returncode == 0
    assert out.read_bytes()[:4] == b"\x89NCF"


@pytest.mark.parametrize("damage", ["truncate", "flip", "magic", "version", "empty", "weights", "dims"])
def test_bad_files_give_one_line_and_nonzero(small_png, tmp_path, damage):
    ncf = tmp_path / "c.ncf"
    run_cli("encode", str(small_png), "-o", str(ncf))
    data = bytearray(ncf.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 10]
    elif damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "magic":
        data[0:4] = b"GIF8"
    elif damage == "version":
        data[4] = 9
    elif damage == "weights":
        c = bitstream.unpack(bytes(data))
        data = bitstream.pack(dataclasses.replace(c.header, weights_digest=bytes(32)), c.sections)
    elif damage == "dims":
        data = reheader(bytes(data), absurd_dims)
    else:
        data = bytearray()
    ncf.write_bytes(bytes(data))
    res = run_cli("decode", str(ncf), "-o", str(tmp_path / "out.png"))
    assert_one_line_error(res)
    assert not (tmp_path / "out.png").exists()
    if damage != "weights":  # info reads the container only; the weights are checked by decode
        assert_one_line_error(run_cli("info", str(ncf)))


def test_unreadable_image_and_missing_file(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert_one_line_error(run_cli("encode", str(bad), "-o", str(tmp_path / "bad.ncf")))
    assert not (tmp_path / "bad.ncf").exists()
    assert_one_line_error(run_cli("decode", str(tmp_path / "missing.ncf")))


def test_unknown_model_and_bad_quality(small_png, tmp_path):
    assert_one_line_error(run_cli("encode", str(small_png), "-o", str(tmp_path / "a.ncf"), "--model", "nope"))
    assert_one_line_error(run_cli("encode", str(small_png), "-o", str(tmp_path / "b.ncf"), "--quality", "99"))


def test_directory_mode_keeps_relative_paths(small_png, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    shutil.copy(small_png, src / "a.png")
    shutil.copy(small_png, src / "sub" / "b.png")
    res = run_cli("encode", str(src), "-o", str(tmp_path / "enc"))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "enc" / "a.ncf").exists() and (tmp_path / "enc" / "sub" / "b.ncf").exists()
    res = run_cli("decode", str(tmp_path / "enc"), "-o", str(tmp_path / "dec"))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "dec" / "sub" / "b.png").exists()


def test_models_lists_registry_with_rd():
    res = run_cli("models", "--json")
    assert res.returncode == 0
    rows = {r["id"]: r for r in json.loads(res.stdout)}
    assert rows["mean-scale-hyperprior"]["weights"] and rows["mean-scale-hyperprior"]["kodak_rd"]
    assert "scale-hyperprior" in rows
    from neuralcodec.models import DEFAULT_MODEL
    from neuralcodec.models.video_registry import DEFAULT_VIDEO_MODEL

    assert [r["id"] for r in rows.values() if r["default"]] == [DEFAULT_MODEL, DEFAULT_VIDEO_MODEL]
    text = run_cli("models").stdout
    assert f"{DEFAULT_MODEL} [default]:" in text and f"{DEFAULT_VIDEO_MODEL} [default for video]" in text


def test_encode_to_bpp_target(small_png, tmp_path):
    ncf = tmp_path / "cat.ncf"
    # no metadata: the sample's 3 KB ICC profile alone is 3.3 bpp of this 96x80 crop (bpp counts every byte)
    res = run_cli("encode", str(small_png), "-o", str(ncf), "--bpp", "0.7", "--metadata", "none")
    assert res.returncode == 0, res.stderr
    assert ncf.stat().st_size * 8 / (96 * 80) <= 0.7
    assert "quality" in res.stdout and "dB PSNR" in res.stdout


def test_quality_and_target_conflict(small_png, tmp_path):
    res = run_cli("encode", str(small_png), "-o", str(tmp_path / "x.ncf"), "--bpp", "0.4", "--quality", "1")
    assert_one_line_error(res)


def test_eval_writes_compressai_format(small_png, tmp_path):
    res = run_cli("eval", str(small_png.parent), "--qualities", "0.5", "1", "--codecs", "jpeg", "-o", str(tmp_path), "-q")
    assert res.returncode == 0, res.stderr
    assert f"{DEFAULT_MODEL} vs jpeg: BD-rate" in res.stdout
    curve = json.loads((tmp_path / f"{DEFAULT_MODEL}.json").read_text())
    assert set(curve["results"]) == {"psnr", "ms-ssim", "bpp", "encoding_time", "decoding_time"}
    assert len(curve["results"]["bpp"]) == 2 and curve["results"]["bpp"] == sorted(curve["results"]["bpp"])
    assert (tmp_path / "jpeg.json").exists() and (tmp_path / "rd.png").exists()


def test_eval_of_empty_folder_is_one_error(tmp_path):
    assert_one_line_error(run_cli("eval", str(tmp_path)))


def test_eval_with_unreadable_image_is_one_error(small_png, tmp_path):
    shutil.copy(small_png, tmp_path / "ok.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    assert_one_line_error(run_cli("eval", str(tmp_path), "--qualities", "1", "--codecs", "jpeg"))
