"""Shipped weights: safetensors files in ``weights/`` described by ``weights/manifest.json``.

The SHA-256 of a weights file is its identity: the encoder writes it into every file and the
decoder refuses a file whose digest differs from the installed weights of that model.
Set ``NEURALCODEC_WEIGHTS`` to use another folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import ModelError
from .base import ImageCodec
from .registry import get_spec

MANIFEST = "manifest.json"
# compressai buffers whose size depends on the trained model (coding tables)
_SIZED_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")
# tensors that define the coding tables (computed after rounding) keep float32 in half exports
_FULL_PRECISION = ("quantiles", "scale_table")


def weights_dir() -> Path:
    env = os.environ.get("NEURALCODEC_WEIGHTS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "weights"


def read_manifest(folder: Path | None = None) -> dict:
    path = (folder or weights_dir()) / MANIFEST
    if not path.exists():
        return {"models": {}}
    with open(path) as f:
        return json.load(f)


def file_digest(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


@dataclass
class LoadedModel:
    model_id: str
    model: ImageCodec
    digest: bytes
    device: str
    quality_range: tuple[float, float]  # what the shipped weights are validated for (manifest)
    default_quality: float

    def check_quality(self, quality: float) -> None:
        """Raise ValueError unless ``quality`` is in the range these weights are shipped for."""
        lo, hi = self.quality_range
        if not (lo <= quality <= hi):
            raise ValueError(f"quality must be between {lo:g} and {hi:g} for '{self.model_id}', got {quality:g}")


def load_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a state dict, resizing compressai's table buffers to the sizes stored in it."""
    for name, buf in model.named_buffers():
        if name.endswith(_SIZED_BUFFERS) and name in state:
            buf.resize_(state[name].shape)
    model.load_state_dict(state)


@lru_cache(maxsize=8)
def load_model(model_id: str, device: str = "cpu") -> LoadedModel:
    """The registered model with its shipped weights, ready to code (cached per device)."""
    spec = get_spec(model_id)
    folder = weights_dir()
    entry = read_manifest(folder)["models"].get(model_id)
    if entry is None:
        raise ModelError(
            f"no weights are installed for '{model_id}' in {folder}; train them with scripts/train.py"
        )
    path = folder / entry["file"]
    if not path.exists():
        raise ModelError(f"weights file {path} listed in the manifest is missing")
    digest = file_digest(path)
    if digest.hex() != entry["sha256"]:
        raise ModelError(f"weights file {path} does not match the digest in its manifest")
    model = spec.build()
    load_state(model, load_file(str(path)))
    model.eval().to(device)
    model.prepare_for_coding()
    lo, hi = (float(v) for v in entry.get("quality_range", [1.0, float(model.levels)]))
    default = float(entry.get("default_quality", (lo + hi) / 2))
    return LoadedModel(model_id, model, digest, device, (lo, hi), default)


def export_weights(model: ImageCodec, model_id: str, info: dict, folder: Path | None = None, half: bool = True) -> Path:
    """Compute coding tables, write ``<id>.safetensors`` and its manifest entry; returns the path.

    With ``half`` the float tensors are rounded to float16 first (half the file size) and the
    coding tables are computed from the rounded model, which is exactly what loading gives back.
    """
    folder = folder or weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    if half:
        with torch.no_grad():
            for name, t in model.state_dict(keep_vars=True).items():
                if t.is_floating_point() and not name.endswith(_FULL_PRECISION):
                    t.copy_(t.half().float())
    model.export_tables()
    path = folder / f"{model_id}.safetensors"
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() and not k.endswith(_FULL_PRECISION) else v
                 for k, v in state.items()}
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata={"model_id": model_id})
    os.replace(tmp, path)
    manifest = read_manifest(folder)
    entry = manifest["models"].get(model_id, {})
    entry.update(info)
    entry.update({"file": path.name, "sha256": file_digest(path).hex(), "config": get_spec(model_id).config})
    manifest["models"][model_id] = entry
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, folder / MANIFEST)
    load_model.cache_clear()
    return path
