"""Video models: stable ids, their image model, and shipped weights (``video_models`` in the manifest).

A video model's weights file holds only the temporal entropy model; the frames go through the
image model it was trained on, whose id and weights digest the manifest entry records: loading
picks that installed version of the image model (a newer image version does not change it).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import ModelError, WeightsMismatchError
from ..io.files import publish
from .stem import StemCodec, TemporalEntropyModel
from .video_registry import DEFAULT_VIDEO_MODEL, VIDEO_REGISTRY, VideoSpec, get_video_spec  # noqa: F401
from .weights import MANIFEST, LoadedModel, file_digest, load_model_for_digest, load_state, read_manifest, verified_file, weights_dir

_FULL_PRECISION = ("quantiles", "scale_table")


@dataclass
class LoadedVideoModel:
    model_id: str
    codec: StemCodec
    digest: bytes  # SHA-256 of the video model's weights file
    image: LoadedModel

    @property
    def quality_range(self) -> tuple[float, float]:
        return self.image.quality_range

    @property
    def default_quality(self) -> float:
        return self.image.default_quality


@lru_cache(maxsize=4)
def load_video_model(model_id: str, device: str = "cpu") -> LoadedVideoModel:
    """The registered video model with its shipped weights and its image model, ready to code."""
    spec = get_video_spec(model_id)
    folder = weights_dir()
    entry = read_manifest(folder).get("video_models", {}).get(model_id)
    if entry is None:
        raise ModelError(f"no weights are installed for video model '{model_id}' in {folder}; "
                         "train them with scripts/train_video.py")
    path, digest = verified_file(entry)
    try:  # the exact image weights version it was trained on, whatever version is newest
        image = load_model_for_digest(entry["image_model"], bytes.fromhex(entry["image_sha256"]), device)
    except WeightsMismatchError as exc:
        raise ModelError(f"video model '{model_id}' needs its image model: {exc}") from None
    temporal = spec.build()
    load_state(temporal, load_file(str(path)))
    temporal.eval().to(device)
    temporal.prepare_for_coding()
    return LoadedVideoModel(model_id, StemCodec(image.model, temporal), digest, image)


def export_video_weights(model: TemporalEntropyModel, model_id: str, image: LoadedModel, info: dict,
                         folder: Path | None = None) -> Path:
    """Round to float16, compute tables, write ``<id>.safetensors`` and its ``video_models`` entry."""
    folder = folder or weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    with torch.no_grad():
        for name, t in model.state_dict(keep_vars=True).items():
            if t.is_floating_point() and not name.endswith(_FULL_PRECISION):
                t.copy_(t.half().float())
    model.export_tables()
    state = {k: (v.half() if v.is_floating_point() and not k.endswith(_FULL_PRECISION) else v).detach().contiguous()
             for k, v in model.state_dict().items()}
    path = folder / f"{model_id}.safetensors"
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata={"model_id": model_id, "image_model": image.model_id,
                                         "image_sha256": image.digest.hex()})
    publish(tmp, path)  # safetensors writes 0600
    manifest = read_manifest(folder)  # re-read right before writing: other keys are kept as they are
    entry = dict(info)
    entry.update({"file": path.name, "sha256": file_digest(path).hex(), "image_model": image.model_id,
                  "image_sha256": image.digest.hex(), "config": get_video_spec(model_id).config})
    manifest.setdefault("video_models", {})[model_id] = entry
    tmp = folder / (MANIFEST + ".video.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, folder / MANIFEST)
    load_video_model.cache_clear()
    return path
