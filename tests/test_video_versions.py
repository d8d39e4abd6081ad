"""Video weights versions: retrained temporal weights install as ``<id>@N``; every installed
version keeps decoding the .ncv files it wrote, and an uninstalled one is named, not guessed."""

import json
import shutil

import numpy as np
import pytest
import torch

from neuralcodec.errors import ModelError, WeightsMismatchError
from neuralcodec.models.manifest import read_manifest, versions, weights_dir
from neuralcodec.models.video_weights import (SECTION, _load_version, export_video_weights, get_video_spec,
                                              load_video_model)
from neuralcodec.models.weights import _load_version as _load_image_version
from neuralcodec.models.weights import load_state
from neuralcodec.video import decode_video, read_video_info

from .conftest import run_cli
from .test_video import encode, moving_frames

MODEL = "stem-msh"


def _clear() -> None:
    _load_version.cache_clear()
    _load_image_version.cache_clear()


@pytest.fixture
def two_versions(tmp_path, monkeypatch):
    """A weights folder with stem-msh's shipped weights as @1, perturbed ones as @2, and the image
    model version both code frames with."""
    from safetensors.torch import load_file

    shipped = read_manifest()
    video = shipped[SECTION][MODEL]
    image_id = video["image_model"]
    image = next(e for e in versions(image_id, shipped) if e["sha256"] == video["image_sha256"])
    folder = tmp_path / "weights"
    folder.mkdir()
    for e in (video, image):
        shutil.copy(weights_dir() / e["file"], folder / e["file"])
    (folder / "manifest.json").write_text(json.dumps({"models": {image_id: image}, SECTION: {MODEL: video}}))
    monkeypatch.setenv("NEURALCODEC_WEIGHTS", str(folder))
    _clear()
    model = get_video_spec(MODEL).build()
    load_state(model, load_file(str(folder / video["file"])))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 4:  # "retrained": other temporal prior weights
                p.mul_(1.05)
                break
    export_video_weights(model, MODEL, load_video_model(MODEL).image, {"training": {"note": "test"}})
    yield folder
    _clear()


def test_retrained_video_weights_install_as_a_new_version(two_versions):
    vs = versions(MODEL, section=SECTION)
    assert [v["version"] for v in vs] == [1, 2]
    assert vs[1]["file"] == f"{MODEL}@2.safetensors" and vs[0]["sha256"] != vs[1]["sha256"]
    assert vs[1]["image_sha256"] == vs[0]["image_sha256"]
    assert load_video_model(MODEL).version == 2 and load_video_model(f"{MODEL}@1").ref == f"{MODEL}@1"


def test_exporting_the_same_weights_again_adds_no_version(two_versions):
    """The file header is deterministic, so the same tensors give the same digest."""
    loaded = load_video_model(MODEL)
    export_video_weights(loaded.codec.temporal, MODEL, loaded.image, {"training": {"note": "again"}})
    vs = versions(MODEL, section=SECTION)
    assert [v["version"] for v in vs] == [1, 2] and vs[1]["training"] == {"note": "again"}


def test_every_video_version_decodes_its_own_files(two_versions, tmp_path):
    frames = moving_frames(3)
    old, old_coded = encode(tmp_path, frames, gop=0, name="old.ncv", model=f"{MODEL}@1")
    new, new_coded = encode(tmp_path, frames, gop=0, name="new.ncv")  # the plain id encodes with the newest
    assert old.header.model_id == new.header.model_id == MODEL  # the digest names the version
    assert old.header.weights_digest == load_video_model(f"{MODEL}@1").digest
    assert new.header.weights_digest == load_video_model(f"{MODEL}@2").digest
    assert [c.record.latent_digest for c in old_coded] != [c.record.latent_digest for c in new_coded]
    for enc, coded in ((old, old_coded), (new, new_coded)):
        out = list(decode_video(enc.path))  # latents exact, else LatentMismatchError
        assert all(np.array_equal(f.rgb, c.rgb) for f, c in zip(out, coded))


def test_file_of_an_uninstalled_video_version_names_what_is_installed(two_versions, tmp_path):
    old, _ = encode(tmp_path, moving_frames(2), gop=0, name="old.ncv", model=f"{MODEL}@1")
    manifest = read_manifest(two_versions)
    manifest[SECTION][MODEL].pop("previous")  # uninstall @1
    (two_versions / "manifest.json").write_text(json.dumps(manifest))
    _clear()
    assert read_video_info(old.path).header.weights_digest == old.header.weights_digest  # info needs no weights
    with pytest.raises(WeightsMismatchError, match="installed versions: @2"):
        list(decode_video(old.path))
    with pytest.raises(ModelError, match="no version 1 installed"):
        load_video_model(f"{MODEL}@1")
    with pytest.raises(ModelError, match="bad model version"):
        load_video_model(f"{MODEL}@x")


def test_models_command_lists_video_versions(two_versions):
    out = json.loads(run_cli("models", "--json").stdout)
    row = next(r for r in out if r["id"] == MODEL)
    assert [v["version"] for v in row["versions"]] == [2, 1] and row["weights"] == f"{MODEL}@2.safetensors"
    text = run_cli("models").stdout
    assert f"versions: @2 {row['versions'][0]['sha256'][:12]} (encodes by default), @1" in text
