"""Compressed-domain API: latents from images equal latents read from files, without synthesis."""

import numpy as np
import pytest
import torch

import neuralcodec as nc
from neuralcodec.latents import LatentDataset, decode_latents, encode_latents
from neuralcodec.models.weights import read_manifest

from .conftest import crop, run_cli

MODELS = sorted(read_manifest()["models"])


@pytest.mark.parametrize("model", MODELS)
def test_dataset_of_files_equals_encode_latents(photo, tmp_path, model):
    ims = [crop(photo, 96, 80, 10 * i, 5 * i) for i in range(3)]
    for i, im in enumerate(ims):
        (tmp_path / f"c{i % 2}").mkdir(exist_ok=True)
        im.save(tmp_path / f"c{i % 2}" / f"{i}.png")
    res = run_cli("encode", str(tmp_path), "-o", str(tmp_path / "ncf"), "--model", model, "-q")
    assert res.returncode == 0, res.stderr
    ds = LatentDataset(tmp_path / "ncf", target=lambda p: p.parts[0])
    assert [str(p.relative_to(tmp_path / "ncf")) for p in ds.paths] == ["c0/0.ncf", "c0/2.ncf", "c1/1.ncf"]
    expected = encode_latents(ims, model=model)
    assert isinstance(expected, torch.Tensor) and expected.shape[0] == 3
    for (latent, label), i in zip(ds, [0, 2, 1]):
        assert label == f"c{i % 2}"
        assert torch.equal(latent, expected[i])
    assert ds.bytes_on_disk() == sum(p.stat().st_size for p in ds.paths)


def test_decode_latents_is_the_decoder_output(photo):
    im = crop(photo, 100, 70, 40, 30)
    enc = nc.encode_image(im, reconstruct=True)
    latent, header = nc.codec.decode_latent(enc.data)
    (rgb,) = decode_latents(latent[None], quality=header.quality, size=(70, 100))
    assert np.array_equal(rgb, enc.rgb)


def test_empty_folder_is_refused(tmp_path):
    with pytest.raises(nc.errors.InputError, match="no .ncf"):
        LatentDataset(tmp_path)
