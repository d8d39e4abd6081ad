"""``weights/manifest.json``: which weights versions are installed for each model. No torch.

A model id names an architecture; each retrained set of weights is a new *version* of it
(``mean-scale-hyperprior@2``). A file records the plain id and the SHA-256 of the weights it was
encoded with, so the decoder picks the version by digest and every shipped version stays
decodable. The plain id means the newest version when encoding.

Layout: ``models[id]`` holds the newest version's entry (``version``, ``file``, ``sha256``,
``quality_range``, ``default_quality``, Kodak figures ...) and ``previous``, the older versions'
entries in the same form. An entry without ``version`` is version 1. Video models live in the
``video_models`` section in the same form; the functions below take ``section`` to reach it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MANIFEST = "manifest.json"


def weights_dir() -> Path:
    env = os.environ.get("NEURALCODEC_WEIGHTS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "weights"


def read_manifest(folder: Path | None = None) -> dict:
    path = (folder or weights_dir()) / MANIFEST
    if not path.exists():
        return {"models": {}}
    with open(path) as f:
        return json.load(f)


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``"id@2"`` -> ``("id", 2)``; ``"id"`` -> ``("id", None)`` (newest). ValueError if malformed."""
    model_id, sep, version = ref.partition("@")
    if not sep:
        return model_id, None
    if not version.isdigit() or int(version) < 1:
        raise ValueError(f"bad model version in '{ref}' (expected ID@N with N >= 1)")
    return model_id, int(version)


def versions(model_id: str, manifest: dict | None = None, section: str = "models") -> list[dict]:
    """Every installed version's entry of ``model_id``, oldest first (empty if none)."""
    manifest = read_manifest() if manifest is None else manifest
    entry = manifest.get(section, {}).get(model_id)
    if entry is None:
        return []
    newest = {k: v for k, v in entry.items() if k != "previous"}
    out = [dict(e) for e in entry.get("previous", [])] + [newest]
    for e in out:
        e.setdefault("version", 1)
    return sorted(out, key=lambda e: e["version"])


def find_version(model_id: str, version: int | None = None, sha256: str | None = None,
                 manifest: dict | None = None, section: str = "models") -> dict | None:
    """The entry of one version: by number, by weights digest (hex), or the newest."""
    vs = versions(model_id, manifest, section)
    if sha256 is not None:
        return next((e for e in vs if e["sha256"] == sha256), None)
    if version is not None:
        return next((e for e in vs if e["version"] == version), None)
    return vs[-1] if vs else None


def find_digest(sha256: str, manifest: dict | None = None) -> tuple[str, dict] | None:
    """The model id and version entry whose weights file has SHA-256 ``sha256`` (hex), any model."""
    manifest = read_manifest() if manifest is None else manifest
    for model_id in manifest["models"]:
        if entry := find_version(model_id, sha256=sha256, manifest=manifest):
            return model_id, entry
    return None


def add_version(manifest: dict, model_id: str, entry: dict, section: str = "models") -> dict:
    """Install ``entry`` as the newest version of ``model_id`` (numbered after the newest one);
    the previous newest moves to ``previous``. An entry whose digest is already installed
    replaces that version's fields instead. Returns the stored entry."""
    models = manifest.setdefault(section, {})
    current = models.get(model_id)
    if current is None:
        stored = {**entry, "version": 1}
        models[model_id] = stored
        return stored
    same = find_version(model_id, sha256=entry["sha256"], manifest=manifest, section=section)
    if same is not None and same["version"] == current.get("version", 1):
        current.update(entry)
        return current
    if same is not None:
        raise ValueError(f"weights {entry['sha256'][:12]} are already version {same['version']} of '{model_id}'")
    previous = current.pop("previous", [])
    current.setdefault("version", 1)
    stored = {**entry, "version": current["version"] + 1, "previous": previous + [current]}
    models[model_id] = stored
    return stored


def entry_of(manifest: dict, ref: str) -> dict:
    """The mutable manifest entry of ``id`` (newest) or ``id@N``; KeyError if not installed."""
    model_id, version = parse_ref(ref)
    entry = manifest["models"][model_id]
    if version is None or version == entry.get("version", 1):
        return entry
    for e in entry.get("previous", []):
        if e.get("version", 1) == version:
            return e
    raise KeyError(ref)
