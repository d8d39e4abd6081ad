"""Training resumes exactly: N steps in one go equal N/2 steps, a restart, and N/2 more."""

import torch
from PIL import Image

from neuralcodec.train.loop import TrainConfig, lambda_for_quality, train

from .conftest import SAMPLES


def _config(tmp_path, out, steps):
    data = tmp_path / "data"
    if not data.exists():
        data.mkdir()
        Image.open(SAMPLES / "chelsea.png").convert("RGB").crop((0, 0, 200, 150)).save(data / "a.png")
        Image.open(SAMPLES / "coffee.png").convert("RGB").crop((0, 0, 100, 90)).save(data / "b.png")
    return TrainConfig(data=str(data), out=str(tmp_path / out), steps=steps, batch=2, crop=64,
                       checkpoint_every=2, log_every=1, seed=3)


def test_resume_is_exact(tmp_path):
    straight = torch.load(train(_config(tmp_path, "a", 4)), weights_only=False)
    train(_config(tmp_path, "b", 2))
    resumed = torch.load(train(_config(tmp_path, "b", 4)), weights_only=False)
    assert resumed["step"] == straight["step"] == 4
    for k, v in straight["model"].items():
        assert torch.equal(v, resumed["model"][k]), k


def test_lambda_interpolation_hits_trained_points():
    lams = [0.001, 0.004, 0.016]
    q = torch.tensor([1.0, 2.0, 3.0, 1.5])
    out = lambda_for_quality(q, lams)
    assert torch.allclose(out[:3], torch.tensor(lams))
    assert abs(out[3].item() - 0.002) < 1e-6
