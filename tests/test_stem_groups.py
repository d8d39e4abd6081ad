"""The channel-group P-frame models (stem-elic-cg, and stem-elic-copy with its copy gates) start
as their image model and code exactly."""

import pytest
import torch

from neuralcodec.errors import CorruptFileError, ModelError
from neuralcodec.models.video_registry import get_video_spec
from neuralcodec.models.weights import load_model


MODELS = ["stem-elic-cg", "stem-elic-copy"]


def untrained_model(model_id: str):
    """The video model warm-started from the installed image model, ready to code, and that model."""
    image = load_model(get_video_spec(model_id).image_model).model
    model = get_video_spec(model_id).build()
    model.init_from_image(image)
    model.export_tables()
    model.eval().prepare_for_coding()
    return model, image


def latents(image, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        y = image.g_a(torch.rand(1, 3, 64, 128, generator=g))
        return y * image.gain(torch.tensor([2.0]))[0]


@pytest.mark.parametrize("model_id", MODELS)
def test_untrained_p_frame_is_coded_as_the_image_model_codes_it(model_id):
    """Zero weights on every temporal input (and a zero copy gate): whatever the reference, the
    P-frame's sections and latent are the image model's own (a P-frame never starts out dearer
    than an I-frame)."""
    model, image = untrained_model(model_id)
    y, ref = latents(image, 0), latents(image, 1).double().round()
    sections, _, y_hat = model.compress(y, ref)
    intra = image.compress_latents(y, image.h_a(y), 0.0, reconstruct=False)[0]
    assert sections == intra.sections
    assert torch.equal(y_hat, intra.latent.double())


@pytest.mark.parametrize("model_id", MODELS)
def test_round_trip_is_exact_and_a_missing_section_is_refused(model_id):
    model, image = untrained_model(model_id)
    with torch.no_grad():  # some weight on the temporal features, so the reference matters
        for net in model.nets.context.correction:
            net[0].weight[:, -model.nets.prior[-1].out_channels:].normal_(0, 0.05)
        for net in getattr(model.nets, "gates", []):
            net[-1].weight.normal_(0, 0.01)
    model.prepare_for_coding()
    y, ref = latents(image, 2), latents(image, 3).double().round()
    sections, symbols, y_hat = model.compress(y, ref)
    assert len(sections) == model.sections == 9
    decoded, symbols2 = model.decompress(sections, ref)
    assert torch.equal(decoded, y_hat)
    assert all((a == b).all() for a, b in zip(symbols, symbols2))
    other, _, _ = model.compress(y, torch.zeros_like(ref))
    assert other != sections  # the reference is used
    with pytest.raises(CorruptFileError, match="9 sections"):
        model.decompress(sections[:-1], ref)


def test_an_open_copy_gate_codes_a_repeated_latent_for_almost_nothing():
    """Gate a = 1 and a scale shift far below the table's smallest scale: the means are the
    reference's own channels, so a frame whose latent rounds to the reference codes as zeros."""
    model, image = untrained_model("stem-elic-copy")
    with torch.no_grad():
        for net, c in zip(model.nets.gates, model.groups):
            net[-1].bias[:c] = 1.0
            net[-1].bias[c:] = -100.0
    model.prepare_for_coding()
    y = latents(image, 4)
    ref = y.double().round()
    sections, symbols, y_hat = model.compress(y, ref)
    assert torch.equal(y_hat, ref)
    assert all((s == 0).all() for s in symbols[1:])
    assert all(len(s) == 8 for s in sections[1:])  # the range coder's bare 64-bit state: no payload
    assert torch.equal(model.decompress(sections, ref)[0], ref)


def test_it_starts_only_from_an_image_model_with_the_same_channel_groups():
    model = get_video_spec("stem-elic-cg").build()
    with pytest.raises(ModelError, match="channel groups"):
        model.init_from_image(load_model("mean-scale-hyperprior").model)
