"""Wavelet packet transform: invertible, and equal to PyWavelets' periodized DWT per level."""

import numpy as np
import pytest
import pywt
import torch

from neuralcodec.models.wpt import iwpt, wpt


@pytest.mark.parametrize("wavelet", ["haar", "bior4.4"])
@pytest.mark.parametrize("levels", [1, 2, 3, 4])
def test_inverse_recovers_the_image(wavelet, levels):
    torch.manual_seed(levels)
    k = 2**levels
    x = torch.rand(2, 3, 3 * k, 5 * k)  # odd multiples: sizes that needed padding
    y = wpt(x, levels, wavelet)
    assert y.shape == (2, 3 * 4**levels, 3, 5)
    assert (iwpt(y, levels, wavelet) - x).abs().max() < 1e-4


@pytest.mark.parametrize("wavelet", ["haar", "bior4.4"])
def test_one_level_matches_pywavelets(wavelet):
    rng = np.random.default_rng(0)
    img = rng.random((16, 24))
    ca, (ch, cv, cd) = pywt.dwt2(img, wavelet, mode="periodization")
    ours = wpt(torch.from_numpy(img)[None, None], 1, wavelet)[0].numpy()
    # our channel order is (band along height, band along width): LL, LH, HL, HH
    np.testing.assert_allclose(ours[0], ca, atol=1e-10)
    np.testing.assert_allclose(ours[1], cv, atol=1e-10)  # high along width: pywt's vertical detail
    np.testing.assert_allclose(ours[2], ch, atol=1e-10)  # high along height: horizontal detail
    np.testing.assert_allclose(ours[3], cd, atol=1e-10)


def test_energy_concentrates_in_the_lowpass_band():
    from PIL import Image

    from .conftest import SAMPLES

    rgb = np.asarray(Image.open(SAMPLES / "coffee.png").convert("RGB"))[:256, :256]
    y = wpt(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255, 2)
    energy = y.pow(2).mean((0, 2, 3)).reshape(3, 16)
    assert (energy[:, 0] > 0.8 * energy.sum(1)).all()


def test_sizes_not_multiple_of_the_levels_are_refused():
    with pytest.raises(ValueError, match="multiples of 16"):
        wpt(torch.zeros(1, 3, 24, 32), 4)


@pytest.mark.parametrize("wavelet", ["haar", "bior4.4"])
def test_every_path_computes_the_same_transform(wavelet, monkeypatch):
    """2-D convolutions (large inputs), strided windows and dense matrices (small ones) agree."""
    from neuralcodec.models import wpt as module

    x = torch.rand(1, 3, 128, 192, dtype=torch.float64)
    conv = wpt(x, 2, wavelet)
    assert (iwpt(conv, 2, wavelet) - x).abs().max() < 1e-10
    monkeypatch.setattr(module, "_CONV_MIN", 10**6)
    windows = wpt(x, 2, wavelet)
    monkeypatch.setattr(module, "_DIRECT_MAX", 10**6)
    dense = wpt(x, 2, wavelet)
    assert (conv - windows).abs().max() < 1e-12
    assert (conv - dense).abs().max() < 1e-12
    assert (iwpt(dense, 2, wavelet) - x).abs().max() < 1e-10

