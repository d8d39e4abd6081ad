"""Large images run the transforms in tiles: same latents and pixels as untiled (within the
conformance tolerance), and the decoder still reproduces the encoder's reconstruction exactly."""

import numpy as np
import pytest
import torch

from neuralcodec.codec import decode, encode_image
from neuralcodec.models.tiling import runs
from neuralcodec.models.weights import load_model, read_manifest

from .conftest import crop

MODELS = sorted(read_manifest()["models"])


@pytest.fixture(params=MODELS)
def model(request):
    return request.param, load_model(request.param).model


def force_tiles(monkeypatch, m, tile: int) -> None:
    monkeypatch.setattr(m, "tile", tile)
    monkeypatch.setattr(m, "tile_above", 0)


def test_wrapped_runs_cover_the_extended_span():
    assert runs((0, 4), 2, 10) == [(8, 10), (0, 6)]
    assert runs((6, 10), 3, 10) == [(3, 10), (0, 3)]
    assert runs((2, 5), 1, 10) == [(1, 6)]


@torch.no_grad()
def test_receptive_fields_lie_within_the_margins(model):
    """Changing one latent (one 16x16 pixel block) changes nothing farther than the margin."""
    _, m = model
    torch.manual_seed(0)
    s, n, c = m.latent_stride, 36, 18
    y = torch.randn(1, m.gain.log_gain.shape[1], n, n) * 2
    y2 = y.clone()
    y2[..., c, c] += 5
    changed = torch.nonzero((m.g_s(y2) - m.g_s(y)).abs().amax((0, 1)) > 1e-5)
    reach = m.synthesis_margin + getattr(m, "wavelet_margin", 0)
    assert changed.min() >= (c - reach) * s and changed.max() < (c + 1 + reach) * s
    x = torch.rand(1, 3, n * s, n * s)
    x2 = x.clone()
    x2[..., c * s : (c + 1) * s, c * s : (c + 1) * s] = torch.rand(1, 3, s, s)
    changed = torch.nonzero((m.g_a(x2) - m.g_a(x)).abs().amax((0, 1)) > 1e-5)
    assert changed.min() >= c - m.analysis_margin and changed.max() <= c + m.analysis_margin


def test_tiled_transforms_match_untiled(model, photo, monkeypatch):
    """Tiles of 6 latent positions on a 384x256 photo: interior, edge and corner tiles."""
    model_id, m = model
    q = load_model(model_id).default_quality
    img = np.asarray(crop(photo, 384, 256, 100, 60))
    x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None]
    y = m.transform_image(x)
    ref = m.reconstruct(y, q, 250, 380)
    force_tiles(monkeypatch, m, 6)
    y_t = m.transform_image(x)
    rgb = m.reconstruct(y, q, 250, 380)
    assert (y_t - y).abs().max() < 1e-3  # the analysis is not normative: close is enough
    delta = np.abs(rgb.astype(int) - ref.astype(int))
    assert delta.max() <= 1 and (delta > 0).mean() < 1e-3


def test_decoder_reproduces_a_tiled_encoder_exactly(model, photo, monkeypatch):
    model_id, m = model
    force_tiles(monkeypatch, m, 5)
    enc = encode_image(crop(photo, 320, 192), model_id, reconstruct=True)
    assert np.array_equal(decode(enc.data).rgb, enc.rgb)


@torch.no_grad()
def test_hyperprior_parameters_by_bands_equal_one_call(monkeypatch):
    """The float64 parameter network over bands of z rows gives the same integers as one call."""
    m = load_model("mean-scale-hyperprior").model
    torch.manual_seed(0)
    z_hat = torch.randn(1, m.entropy_bottleneck.channels, 13, 7).mul_(3).round_()
    indexes, means_q = m._y_params(z_hat)
    monkeypatch.setattr(m, "band", 3)
    monkeypatch.setattr(m, "band_above", 0)
    banded = m._y_params(z_hat)
    assert torch.equal(banded[0], indexes) and torch.equal(banded[1], means_q)
    y = torch.randn(indexes.shape) * 4
    sym, y_hat = m._y_values(y, means_q)
    assert torch.equal(sym, m._y_stage.quantize(y, means_q))
    assert torch.equal(y_hat, m._y_stage.dequantize(sym, means_q))


@pytest.mark.parametrize("model_id", ["checkerboard-hyperprior", "elic-context-hyperprior"])
def test_context_passes_by_bands_equal_one_call(monkeypatch, photo, model_id):
    """Context models run each pass's float64 networks by row bands on tall latents: the same
    files and the same decoded latents as the passes over the whole latent."""
    image = crop(photo, 128, 320)  # 20 latent rows: bands of 4 rows plus 2 rows of context
    whole = encode_image(image, model_id)
    m = load_model(model_id).model
    monkeypatch.setattr(m, "band", 1)
    monkeypatch.setattr(m, "band_above", 0)
    banded = encode_image(image, model_id)
    assert banded.data == whole.data
    assert np.array_equal(decode(banded.data).rgb, decode(whole.data).rgb)
