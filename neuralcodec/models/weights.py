"""Shipped weights: safetensors files in ``weights/`` described by ``weights/manifest.json``.

The SHA-256 of a weights file is its identity: the encoder writes it into every file and the
decoder refuses a file whose digest differs from the installed weights of that model.
The manifest is read by :mod:`.manifest` (torch-free); ``read_manifest`` and ``weights_dir`` are
re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import ModelError, WeightsMismatchError
from ..io.files import publish
from .base import ImageCodec
from .manifest import MANIFEST, add_version, find_version, parse_ref, read_manifest, versions, weights_dir
from .registry import get_spec

# compressai buffers whose size depends on the trained model (coding tables)
_SIZED_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")
# tensors that define the coding tables (computed after rounding) keep float32 in half exports
_FULL_PRECISION = ("quantiles", "scale_table")
# constants of compressai's training-style likelihoods, not weights: float16 files store their
# 1e-9 floor as 0, which made -log2(likelihood) infinite in --effort and in warm starts. Loading
# keeps the values the model was built with; the coding tables never read them.
_CONSTANT_BUFFERS = ("likelihood_lower_bound.bound",)


def file_digest(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


def verified_file(entry: dict) -> tuple[Path, bytes]:
    """The weights file a manifest entry names, and its SHA-256, checked against the entry."""
    path = weights_dir() / entry["file"]
    if not path.exists():
        raise ModelError(f"weights file {path} listed in the manifest is missing")
    digest = file_digest(path)
    if digest.hex() != entry["sha256"]:
        raise ModelError(f"weights file {path} does not match the digest in its manifest")
    return path, digest


@dataclass
class LoadedModel:
    model_id: str  # the plain id written into files
    model: ImageCodec
    digest: bytes
    device: str
    quality_range: tuple[float, float]  # what the shipped weights are validated for (manifest)
    default_quality: float
    version: int = 1

    @property
    def ref(self) -> str:
        """``id@version``: names these exact weights."""
        return f"{self.model_id}@{self.version}"

    def check_quality(self, quality: float) -> None:
        """Raise ValueError unless ``quality`` is in the range these weights are shipped for."""
        lo, hi = self.quality_range
        if not (lo <= quality <= hi):
            raise ValueError(f"quality must be between {lo:g} and {hi:g} for '{self.ref}', got {quality:g}")


def load_state(model: torch.nn.Module, state: dict[str, torch.Tensor], strict: bool = True) -> None:
    """Load a state dict, resizing compressai's table buffers to the sizes stored in it; the
    likelihood floors keep their built values (``_CONSTANT_BUFFERS``)."""
    for name, buf in model.named_buffers():
        if name.endswith(_SIZED_BUFFERS) and name in state:
            buf.resize_(state[name].shape)
    built = {n: b.clone() for n, b in model.state_dict().items() if n.endswith(_CONSTANT_BUFFERS)}
    model.load_state_dict({**state, **built}, strict=strict)


def installed_entry(ref: str, known: Callable[[str], object], section: str = "models") -> tuple[str, dict]:
    """The id and manifest entry of the weights ``ref`` names (``id``: the newest version,
    ``id@N``: version N) in ``section``; ``known(id)`` raises for unknown ids first. ModelError if
    the ref is malformed or names no installed version."""
    try:
        model_id, version = parse_ref(ref)
    except ValueError as exc:
        raise ModelError(str(exc)) from None
    known(model_id)  # unknown ids fail first, with the list of known ones
    entry = find_version(model_id, version=version, section=section)
    if entry is None:
        what, script = ("", "train.py") if section == "models" else ("video model ", "train_video.py")
        if version is None:
            raise ModelError(f"no weights are installed for {what}'{model_id}' in {weights_dir()}; "
                             f"train them with scripts/{script}")
        have = ", ".join(f"@{e['version']}" for e in versions(model_id, section=section)) or "none"
        raise ModelError(f"{what}'{model_id}' has no version {version} installed (installed: {have})")
    return model_id, entry


def load_model(model: str, device: str = "cpu") -> LoadedModel:
    """A registered model with shipped weights, ready to code (cached per device).

    ``model`` is an id (its newest version) or ``id@N`` (version N)."""
    model_id, entry = installed_entry(model, get_spec)
    return _load_version(model_id, entry["sha256"], device)


def load_model_for_digest(model_id: str, digest: bytes, device: str = "cpu") -> LoadedModel:
    """The installed version of ``model_id`` whose weights have SHA-256 ``digest`` (what a file
    names); WeightsMismatchError if no installed version has it."""
    get_spec(model_id)
    if find_version(model_id, sha256=digest.hex()) is None:
        have = ", ".join(f"@{e['version']} {e['sha256'][:12]}" for e in versions(model_id)) or "none"
        raise WeightsMismatchError(
            f"file was encoded with weights {digest.hex()[:12]} of '{model_id}', which are not installed "
            f"(installed versions: {have}); install the weights version it names"
        )
    return _load_version(model_id, digest.hex(), device)


@lru_cache(maxsize=16)
def _load_version(model_id: str, sha256: str, device: str) -> LoadedModel:
    entry = find_version(model_id, sha256=sha256)
    path, digest = verified_file(entry)
    model = get_spec(model_id).build()
    load_state(model, load_file(str(path)))
    model.eval().to(device)
    model.prepare_for_coding()
    lo, hi = (float(v) for v in entry.get("quality_range", [1.0, float(model.levels)]))
    default = float(entry.get("default_quality", (lo + hi) / 2))
    return LoadedModel(model_id, model, digest, device, (lo, hi), default, entry["version"])


def half_state(model: torch.nn.Module, half: bool = True) -> dict[str, torch.Tensor]:
    """Round the model's float tensors to float16 in place (``half``), compute its coding tables
    from the rounded model (``export_tables``) and return the state to write: exactly what
    loading gives back. Table-defining tensors (``_FULL_PRECISION``) keep float32."""
    model = model.cpu().eval()
    keep = lambda name, t: not t.is_floating_point() or name.endswith(_FULL_PRECISION)  # noqa: E731
    if half:
        with torch.no_grad():
            for name, t in model.state_dict(keep_vars=True).items():
                if not keep(name, t):
                    t.copy_(t.half().float())
    model.export_tables()
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    return {k: v if not half or keep(k, v) else v.half() for k, v in state.items()}


def install_weights(state: dict[str, torch.Tensor], model_id: str, entry: dict, folder: Path,
                    section: str = "models") -> Path:
    """Write ``state`` and install it in ``folder``'s manifest as the newest version of
    ``model_id`` in ``section`` (the first version is ``<id>.safetensors``, later ones
    ``<id>@N.safetensors``; older versions stay installed so their files keep decoding). The same
    weights again refresh their entry instead. ``entry`` gets ``file`` and ``sha256``."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{model_id}.safetensors.tmp"
    save_file(state, str(tmp), metadata={"model_id": model_id})  # one key: a deterministic header
    digest = file_digest(tmp).hex()
    manifest = read_manifest(folder)
    newest = find_version(model_id, manifest=manifest, section=section)
    if newest is not None and newest["sha256"] == digest:
        tmp.unlink()
        path = folder / newest["file"]
    else:
        n = 1 if newest is None else newest["version"] + 1
        path = folder / (f"{model_id}.safetensors" if n == 1 else f"{model_id}@{n}.safetensors")
        publish(tmp, path)  # safetensors writes 0600
    add_version(manifest, model_id, {**entry, "file": path.name, "sha256": digest}, section)
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, folder / MANIFEST)
    return path


def export_weights(model: ImageCodec, model_id: str, info: dict, folder: Path | None = None, half: bool = True) -> Path:
    """Compute coding tables, write the weights file and install it as a new version of
    ``model_id`` (:func:`install_weights`). With ``half`` the float tensors are rounded to
    float16 first (half the file size) and the tables computed from the rounded model."""
    path = install_weights(half_state(model, half), model_id, {**info, "config": get_spec(model_id).config},
                           folder or weights_dir())
    _load_version.cache_clear()
    return path
