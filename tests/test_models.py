"""Every registered architecture, independent of shipped weights: coding is exact, batch- and
thread-invariant, and the sections follow docs/bitstream.md."""

import numpy as np
import pytest
import torch

from neuralcodec.models import REGISTRY
from neuralcodec.models.context import ContextHyperprior, anchor_mask
from neuralcodec.models.factorized import FactorizedPrior
from neuralcodec.models.registry import get_spec
from neuralcodec.models.weights import weights_dir
from neuralcodec.train.loop import warm_start

from .conftest import SAMPLES

MODELS = sorted(REGISTRY)


def _build(model_id: str):
    """The architecture warm-started from its shipped weights, or the hyperprior's where it has
    none yet (so latents carry real information), with random nonzero context corrections (so
    the context really acts)."""
    torch.manual_seed(0)
    model = get_spec(model_id).build()
    own = weights_dir() / f"{model_id}.safetensors"
    warm_start(model, str(own if own.exists() else weights_dir() / "mean-scale-hyperprior.safetensors"))
    if isinstance(model, ContextHyperprior):
        for net in model.context.correction:
            torch.nn.init.normal_(net[-1].weight, std=0.02)
    model.eval()
    model.export_tables()
    model.prepare_for_coding()
    return model


@pytest.fixture(scope="module", params=MODELS)
def model(request):
    return request.param, _build(request.param)


def _photo(h: int, w: int, top: int = 0) -> torch.Tensor:
    from PIL import Image

    rgb = np.asarray(Image.open(SAMPLES / "coffee.png").convert("RGB"))[top : top + h, :w]
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float().div(255)


def test_round_trip_is_bit_exact(model):
    _, m = model
    k = m.downsampling
    x = _photo(2 * k, 3 * k)
    coded = m.compress(x, 1.5)[0]
    dec = m.decompress(coded.sections, 2 * k, 3 * k, 1.5)
    assert dec.latent_digest == coded.latent_digest
    assert torch.equal(dec.x_hat, coded.x_hat)
    assert -10 * torch.log10((dec.x_hat - x).pow(2).mean()) > 20


def test_batch_and_threads_do_not_change_bytes(model):
    _, m = model
    k = m.downsampling
    x = torch.cat([_photo(k, 2 * k), _photo(k, 2 * k, top=k)])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        singles = [m.compress(x[i : i + 1], 2.0, reconstruct=False)[0].sections for i in range(2)]
        torch.set_num_threads(2)
        batched = [c.sections for c in m.compress(x, 2.0, reconstruct=False)]
    finally:
        torch.set_num_threads(threads)
    assert singles == batched


@pytest.mark.parametrize("model_id", [m for m in MODELS if isinstance(get_spec(m).build(), ContextHyperprior)])
def test_context_sections_follow_the_spec(model_id):
    """1 + 2 sections per group; each pass codes its group's channels at anchors (row + column
    even) then at non-anchors, and the latent digest is over the passes in that order."""
    m = _build(model_id)
    recorded = []
    encode = m._y_stage.encode
    m._y_stage.encode = lambda s, i: recorded.append(s.shape) or encode(s, i)
    x = _photo(64, 128)
    coded = m.compress(x, 1.0, reconstruct=False)[0]
    assert len(coded.sections) == 1 + 2 * len(m.groups)
    anchors = int(anchor_mask(4, 8).sum())
    assert recorded == [s for c in m.groups for s in ((c, anchors), (c, 32 - anchors))]


@pytest.mark.parametrize("model_id", [m for m in MODELS if isinstance(get_spec(m).build(), ContextHyperprior)])
def test_anchor_pass_ignores_non_anchor_latents(model_id):
    """The first pass's parameters depend only on the hyperprior: changing the decoded values at
    non-anchor positions of a group must not change them (the decoder does not know those yet)."""
    m = _build(model_id)
    hyper = torch.randn(1, 2 * sum(m.groups), 8, 8, dtype=torch.float64)
    y_hat = torch.zeros(1, sum(m.groups), 8, 8, dtype=torch.float64)
    first = next(m._passes(hyper, y_hat))
    y_hat[..., ~anchor_mask(8, 8)] = 3.0
    again = next(m._passes(hyper, y_hat))
    assert all(torch.equal(a, b) for a, b in zip(first[1:], again[1:]))
    passes = m._passes(hyper, torch.zeros_like(y_hat))
    next(passes)
    second = next(passes)  # non-anchor pass: does see the anchors
    y_anchor = torch.zeros_like(y_hat)
    y_anchor[..., anchor_mask(8, 8)] = 3.0
    passes = m._passes(hyper, y_anchor)
    next(passes)
    assert not torch.equal(second[2], next(passes)[2])


@pytest.mark.parametrize("model_id", [m for m in MODELS if isinstance(get_spec(m).build(), FactorizedPrior)])
def test_stepped_factorized_tables_code_at_the_trained_rate(model_id):
    """At every quality, the coded size is the rate the model estimates in training (eval mode):
    the integer tables built for that quality's steps match the learned density."""
    m = _build(model_id)
    x = _photo(64, 96)
    sizes = []
    for q in (0.5, m.levels / 2, m.levels):
        coded = m.compress(x, q, reconstruct=False)[0]
        with torch.no_grad():
            estimate = -m(x, torch.tensor([q]))["y_likelihoods"].log2().sum().item()
        bits = len(coded.sections[0]) * 8
        assert abs(bits - estimate) < 0.03 * estimate + 96, (q, bits, estimate)
        sizes.append(bits)
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_warm_start_keeps_the_built_likelihood_floors():
    """Shipped float16 weights hold the 1e-9 likelihood floor as 0; a warm start (and a resume)
    must not copy that into a model being trained (an infinite rate skips the step)."""
    model = get_spec("elic-context-hyperprior").build()
    floors = {n: b.clone() for n, b in model.named_buffers() if n.endswith("likelihood_lower_bound.bound")}
    warm_start(model, str(weights_dir() / "elic-context-hyperprior.safetensors"))
    after = dict(model.named_buffers())
    assert floors and all(torch.equal(after[n], b) and float(b) > 0 for n, b in floors.items())
