"""Video models: stable ids, their image model, and shipped weights (``video_models`` in the manifest).

A video model's weights file holds only the temporal entropy model; the frames go through the
image model it was trained on, whose id and weights digest the manifest entry records: loading
picks that installed version of the image model (a newer image version does not change it).
Retrained weights are a new *version* (``stem-elic@2``), as for image models: a .ncv file names
the plain id and the weights digest, and decoding picks the installed version by digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from safetensors.torch import load_file

from ..errors import ModelError, WeightsMismatchError
from .manifest import find_version, versions
from .stem import StemCodec, TemporalEntropyModel
from .video_registry import DEFAULT_VIDEO_MODEL, VIDEO_REGISTRY, VideoSpec, get_video_spec  # noqa: F401
from .weights import LoadedModel, half_state, install_weights, installed_entry, load_model_for_digest, load_state, verified_file, weights_dir

SECTION = "video_models"  # the manifest section that lists video weights versions


@dataclass
class LoadedVideoModel:
    model_id: str  # the plain id written into files
    codec: StemCodec
    digest: bytes  # SHA-256 of the video model's weights file
    image: LoadedModel
    version: int = 1

    @property
    def ref(self) -> str:
        """``id@version``: names these exact weights."""
        return f"{self.model_id}@{self.version}"

    @property
    def quality_range(self) -> tuple[float, float]:
        return self.image.quality_range

    @property
    def default_quality(self) -> float:
        return self.image.default_quality


def load_video_model(model: str, device: str = "cpu") -> LoadedVideoModel:
    """A registered video model with shipped weights and its image model, ready to code.

    ``model`` is an id (its newest version) or ``id@N`` (version N)."""
    model_id, entry = installed_entry(model, get_video_spec, SECTION)
    return _load_version(model_id, entry["sha256"], device)


def load_video_model_for_digest(model_id: str, digest: bytes, device: str = "cpu") -> LoadedVideoModel:
    """The installed version of video model ``model_id`` whose weights have SHA-256 ``digest``
    (what a .ncv file names); WeightsMismatchError if no installed version has it."""
    get_video_spec(model_id)
    if find_version(model_id, sha256=digest.hex(), section=SECTION) is None:
        have = ", ".join(f"@{e['version']} {e['sha256'][:12]}" for e in versions(model_id, section=SECTION)) or "none"
        raise WeightsMismatchError(
            f"file was encoded with weights {digest.hex()[:12]} of video model '{model_id}', which are not installed "
            f"(installed versions: {have}); install the weights version it names")
    return _load_version(model_id, digest.hex(), device)


@lru_cache(maxsize=4)
def _load_version(model_id: str, sha256: str, device: str) -> LoadedVideoModel:
    entry = find_version(model_id, sha256=sha256, section=SECTION)
    path, digest = verified_file(entry)
    try:  # the exact image weights version it was trained on, whatever version is newest
        image = load_model_for_digest(entry["image_model"], bytes.fromhex(entry["image_sha256"]), device)
    except WeightsMismatchError as exc:
        raise ModelError(f"video model '{model_id}@{entry['version']}' needs its image model: {exc}") from None
    temporal = get_video_spec(model_id).build()
    load_state(temporal, load_file(str(path)))
    temporal.eval().to(device)
    temporal.prepare_for_coding()
    return LoadedVideoModel(model_id, StemCodec(image.model, temporal), digest, image, entry["version"])


def export_video_weights(model: TemporalEntropyModel, model_id: str, image: LoadedModel, info: dict,
                         folder: Path | None = None) -> Path:
    """Round to float16, compute tables and install the file as the newest version of
    ``model_id`` (``<id>@N.safetensors`` after the first); older versions stay installed, so
    the .ncv files they wrote keep decoding."""
    entry = {**info, "image_model": image.model_id, "image_sha256": image.digest.hex(),
             "config": get_video_spec(model_id).config}
    path = install_weights(half_state(model), model_id, entry, folder or weights_dir(), SECTION)
    _load_version.cache_clear()
    return path
