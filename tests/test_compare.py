"""``ncodec compare`` and ``ncodec eval --report``: the figure's layout, its tEXt record, size-matched
baselines, the report folder, and one-line errors."""

import json

import numpy as np
import pytest
from PIL import Image

from neuralcodec.compare import ZOOM, baseline_panel, detail_region, figure_size, match_size, read_chunks
from neuralcodec.evaluation import pillow_decode, pillow_encode
from neuralcodec.models import DEFAULT_MODEL

from .conftest import SAMPLES, run_cli
from .test_cli import assert_one_line_error

TOLERANCE = 0.05  # a baseline file within 5 % of our bytes (compare's default; otherwise flagged unmatched)
W, H = 192, 176  # MS-SSIM needs sides above 160


@pytest.fixture(scope="module")
def photo_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("cmp") / "coffee.png"
    Image.open(SAMPLES / "coffee.png").convert("RGB").crop((0, 0, W, H)).save(path)
    return path


@pytest.fixture(scope="module")
def figure(photo_png):
    out = photo_png.parent / "compare.png"
    res = run_cli("compare", str(photo_png), "-o", str(out), "--quality", "1.75")
    assert res.returncode == 0, res.stderr
    return out


def test_figure_size_follows_the_layout(figure):
    with Image.open(figure) as im:
        assert im.format == "PNG"
        assert im.size == figure_size(min(W, H), 6)  # whole image, original, ours, JPEG, WebP, AVIF


def test_text_chunks_label_every_panel(figure):
    rec = read_chunks(figure)
    assert [p["codec"] for p in rec["panels"]] == ["original", "ours", "JPEG", "WebP", "AVIF"]
    assert rec["model"] == DEFAULT_MODEL and rec["quality"] == 1.75
    with Image.open(figure) as im:
        for p in rec["panels"][1:]:
            assert p["label"][2] == f"{p['bytes']:,} B, {p['bpp']:.3f} bpp"
            assert p["label"][3] == f"PSNR {p['psnr']:.2f} dB" and 20 < p["psnr"] < 50
            assert p["label"][4] == f"MS-SSIM {p['ms_ssim']:.4f}" and 0.5 < p["ms_ssim"] < 1
            assert im.text[f"ncodec:panel:{p['codec']}"] == ", ".join(p["label"])


def test_baselines_match_our_file_size(figure):
    rec = read_chunks(figure)
    ours = rec["panels"][1]
    assert ours["bytes"] == rec["target_bytes"]
    for p in rec["panels"][2:]:
        assert p["matched"] and abs(p["bytes"] - ours["bytes"]) <= TOLERANCE * ours["bytes"], p
        assert abs(p["bpp"] - ours["bpp"]) <= TOLERANCE * ours["bpp"]


def test_crops_are_the_image_at_1x_and_4x(figure, photo_png):
    rec, src = read_chunks(figure), Image.open(photo_png)
    r, original = rec["region"], rec["panels"][0]
    with Image.open(figure) as im:
        one = im.crop(original["box_1x"])
        zoom = im.crop(original["box_zoom"])
    assert np.array_equal(np.asarray(one), np.asarray(src.crop((r["x"], r["y"], r["x"] + r["size"], r["y"] + r["size"]))))
    z = r["zoom_size"]
    region = src.crop((r["zoom_x"], r["zoom_y"], r["zoom_x"] + z, r["zoom_y"] + z))
    assert np.array_equal(np.asarray(zoom), np.asarray(region.resize((z * ZOOM, z * ZOOM), Image.NEAREST)))
    assert r["x"] <= r["zoom_x"] and r["zoom_x"] + z <= r["x"] + r["size"]  # the zoom lies inside the crop


def test_default_region_is_the_most_detailed():
    rng = np.random.default_rng(0)
    img = np.full((120, 200, 3), 128, np.uint8)
    img[70:100, 150:180] = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)  # the only texture
    r = detail_region(img, 64)
    assert (r.size, r.zoom_size) == (64, 16)
    assert 70 <= r.zoom_y and r.zoom_y + 16 <= 100 and 150 <= r.zoom_x and r.zoom_x + 16 <= 180
    assert 0 <= r.x <= 200 - 64 and 0 <= r.y <= 120 - 64


def test_match_size_finds_the_quality_of_a_given_size(photo_png):
    ref = np.asarray(Image.open(photo_png))
    for codec in ("jpeg", "webp"):
        target = len(pillow_encode(ref, codec, 60))
        q, data, rgb = match_size(ref, codec, target)
        assert abs(len(data) - target) <= 0.02 * target, (codec, q)
        assert np.array_equal(rgb, pillow_decode(data))


def test_a_baseline_that_cannot_reach_our_size_is_flagged():
    ref = np.full((64, 64, 3), 100, np.uint8)
    small = baseline_panel(ref, "jpeg", 100, TOLERANCE)  # JPEG's headers alone exceed 100 bytes
    assert not small.matched and small.note == "smallest JPEG file" and small.setting == "Pillow quality 1"
    big = baseline_panel(ref, "webp", 10**6, TOLERANCE)
    assert not big.matched and big.note == "largest WebP file" and big.setting == "Pillow quality 100"


def test_crop_option_places_the_crop(photo_png, tmp_path):
    out = tmp_path / "c.png"
    res = run_cli("compare", str(photo_png), "-o", str(out), "--crop", "10,20", "--crop-size", "64", "-q")
    assert res.returncode == 0, res.stderr
    r = read_chunks(out)["region"]
    assert (r["x"], r["y"], r["size"], r["zoom_size"]) == (10, 20, 64, 16)
    assert (r["zoom_x"], r["zoom_y"]) == (10 + 24, 20 + 24)  # the centre quarter


def test_eval_report_folder(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    src = Image.open(SAMPLES / "chelsea.png").convert("RGB")  # two textured crops (fur, whiskers)
    for i, (x, y) in enumerate([(100, 50), (200, 120)]):
        src.crop((x, y, x + 64, y + 64)).save(data / f"im{i}.png")
    report = tmp_path / "report"
    res = run_cli("eval", str(data), "--models", "mean-scale-hyperprior", "--qualities", "0", "1.75",
                  "--codecs", "webp", "--report", str(report), "-q")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in report.iterdir()) == ["compare_best.png", "compare_worst.png", "index.md",
                                                        "per_image.json", "rd.png"]
    index = (report / "index.md").read_text()
    for name in ("rd.png", "per_image.json", "compare_best.png", "compare_worst.png"):
        assert f"({name})" in index
    rows = json.loads((report / "per_image.json").read_text())["images"]
    assert [r["image"] for r in rows] == ["im0.png", "im1.png"]
    assert len(rows[0]["curves"]["mean-scale-hyperprior"]) == 2 and "webp" in rows[0]["bd_rate"]["mean-scale-hyperprior"]
    bd = {r["image"]: r["bd_rate"]["mean-scale-hyperprior"]["webp"]["psnr"] for r in rows}
    assert None not in bd.values() and bd["im0.png"] != bd["im1.png"]  # both ranked, one better
    best, worst = (read_chunks(report / f"compare_{w}.png")["image"] for w in ("best", "worst"))
    assert bd[best] == min(bd.values()) and bd[worst] == max(bd.values())


@pytest.mark.parametrize("args, status", [
    (["{missing}", "-o", "{out}"], 1),
    (["{photo}", "-o", "{out}", "--bpp", "0.3", "--quality", "1"], 2),
    (["{broken}", "-o", "{out}"], 1),
    (["{photo}", "-o", "{tmp}/c.jpg"], 2),
    (["{photo}", "-o", "{out}", "--crop", "500,0"], 2),
    (["{photo}", "-o", "{out}", "--crop", "x"], 2),
])
def test_bad_input_is_one_error_line(args, status, photo_png, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    names = {"missing": tmp_path / "nope.png", "out": tmp_path / "c.png", "photo": photo_png,
             "broken": tmp_path / "broken.png", "tmp": tmp_path}
    res = run_cli("compare", *(a.format(**names) for a in args))
    assert_one_line_error(res)
    assert res.returncode == status
    assert not (tmp_path / "c.png").exists()


def test_eval_report_needs_a_baseline(tmp_path):
    res = run_cli("eval", str(SAMPLES), "--codecs", "--report", str(tmp_path / "r"))
    assert_one_line_error(res)
    assert res.returncode == 2 and not (tmp_path / "r").exists()


def test_pillow_points_cache_reuses_only_the_same_pixels_and_setting():
    """A cached baseline point is returned as stored; other pixels or another setting are measured."""
    from neuralcodec.evaluation import pillow_points

    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (32, 48, 3), dtype=np.uint8) for _ in range(2))
    cache: dict = {}
    first = pillow_points([a], "webp", 50, cache)
    assert len(cache) == 1
    (key,) = cache
    cache[key] = {**cache[key], "bpp": 123.0}  # a stored point is believed, not re-measured
    assert pillow_points([a], "webp", 50, cache)[0]["bpp"] == 123.0
    assert pillow_points([b], "webp", 50, cache)[0]["bpp"] != 123.0
    assert pillow_points([a], "webp", 60, cache)[0]["bpp"] != 123.0
    assert pillow_points([a], "webp", 50)[0]["bpp"] == first[0]["bpp"] and len(cache) == 3
