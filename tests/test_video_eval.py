"""scripts/eval_video.py: the reference encoders keep the GOP and never reorder frames; PSNR and
MS-SSIM reach the BD-rates. Small frames keep each test to about a second."""

import importlib.util
import math
from pathlib import Path

import av
import pytest

from .conftest import ROOT
from .test_video import moving_frames

spec = importlib.util.spec_from_file_location("eval_video", ROOT / "scripts" / "eval_video.py")
eval_video = importlib.util.module_from_spec(spec)
spec.loader.exec_module(eval_video)

CODECS = [("libx264", "veryslow"), ("libx265", "veryslow"), ("libx264", "medium"),
          pytest.param("libsvtav1", "8", marks=pytest.mark.skipif("libsvtav1" not in av.codecs_available,
                                                                   reason="this FFmpeg build has no libsvtav1"))]


@pytest.mark.parametrize("codec,preset", CODECS)
def test_reference_keeps_gop_without_reordering(tmp_path, codec, preset):
    frames = moving_frames(9, h=176, w=192)
    point = eval_video.reference(frames, tmp_path, codec, 40, gop=4, preset=preset)
    path = tmp_path / f"{codec}.mp4"
    with av.open(str(path)) as c:
        packets = [p for p in c.demux(video=0) if p.size]
    assert [i for i, p in enumerate(packets) if p.is_keyframe] == [0, 4, 8]
    assert [p.pts for p in packets] == sorted(p.pts for p in packets)  # decode order = display order
    assert point["bpp"] == path.stat().st_size * 8 / (9 * 176 * 192)
    assert 20 < point["psnr"] < 60 and 0.5 < point["msssim"] < 1


def test_msssim_needs_frames_over_160_pixels(tmp_path):
    frames = moving_frames(2, h=144, w=176)
    point = eval_video.reference(frames, tmp_path, "libx264", 30, gop=2)
    assert math.isfinite(point["psnr"]) and math.isnan(point["msssim"])


def test_bd_rates_on_psnr_and_msssim():
    a = [{"bpp": r, "psnr": 20 + 4 * math.log(r), "msssim_db": 8 + 3 * math.log(r)} for r in (0.1, 0.2, 0.4, 0.8)]
    b = [dict(p, bpp=p["bpp"] / 2) for p in a]  # the same quality at half the bits
    bd = eval_video.bd_table({"ours": b, "ours-gop1": a, "libx264-medium": a})
    assert bd.keys() == {"ours vs ours-gop1", "ours vs libx264-medium", "ours-gop1 vs libx264-medium"}
    assert bd["ours vs ours-gop1"]["psnr"] == pytest.approx(-50)
    assert bd["ours vs ours-gop1"]["msssim_db"] == pytest.approx(-50)
    assert bd["ours-gop1 vs libx264-medium"]["msssim_db"] == pytest.approx(0, abs=1e-9)
