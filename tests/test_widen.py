"""A model warm-started from a narrower one's weights computes what the narrow one did, and its
new latent channels still get gradients (train/widen.py)."""

import numpy as np
import pytest
import torch
from PIL import Image

from neuralcodec.models.manifest import find_version
from neuralcodec.models.context import ContextHyperprior
from neuralcodec.models.registry import get_spec
from neuralcodec.models.weights import verified_file
from neuralcodec.train.loop import warm_start
from neuralcodec.train.widen import widen_state

from .conftest import SAMPLES


def _wide() -> ContextHyperprior:
    """elic-context-hyperprior with a fifth channel group of 64: 192 latent channels."""
    config = get_spec("elic-context-hyperprior").config
    return ContextHyperprior(**{**config, "M": 192, "groups": [*config["groups"], 64]})


@pytest.fixture(scope="module")
def pair():
    path = str(verified_file(find_version("elic-context-hyperprior"))[0])
    narrow, wide = get_spec("elic-context-hyperprior").build(), _wide()
    assert not set(warm_start(narrow, path)) & dict(narrow.named_parameters()).keys()
    params = dict(wide.named_parameters())
    new_group = {k for k in params if k.startswith(("context.channel.4.", "context.spatial.4.", "context.correction.4."))}
    assert new_group and set(warm_start(wide, path)) & params.keys() == new_group  # all else widened
    image = Image.open(SAMPLES / "chelsea.png").convert("RGB").crop((0, 0, 256, 128))
    x = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)[None].float().div(255)
    return narrow.train(), wide.train(), x


@pytest.mark.parametrize("quality", [1.0, 6.0])
def test_widened_model_computes_what_the_narrow_one_did(pair, quality):
    narrow, wide, x = pair
    with torch.no_grad():
        a = narrow(x, torch.tensor([quality]), rate_round=True)
        b = wide(x, torch.tensor([quality]), rate_round=True)
    assert b["y_likelihoods"].shape[1] == 192
    torch.testing.assert_close(b["x_hat"], a["x_hat"], rtol=0, atol=1e-5)
    torch.testing.assert_close(b["y_likelihoods"][:, :128], a["y_likelihoods"], rtol=0, atol=1e-5)
    torch.testing.assert_close(b["z_likelihoods"], a["z_likelihoods"], rtol=0, atol=0)


def test_new_channels_get_gradients(pair):
    """Zero weights on both sides of the new channels would be a saddle point that never trains."""
    _, wide, x = pair
    out = wide(x, torch.tensor([6.0]))
    mse = (out["x_hat"] - x).pow(2).mean()
    wide.zero_grad()
    mse.backward()
    first = wide.g_s[0].weight  # ConvTranspose2d: (M, N, k, k)
    assert first[128:].abs().max() == 0 and first.grad[128:].abs().max() > 0


def test_narrowing_is_refused():
    with pytest.raises(ValueError, match="cannot narrow"):
        widen_state(_wide().state_dict(), get_spec("elic-context-hyperprior").build())
