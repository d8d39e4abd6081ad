#!/usr/bin/env python
"""Fit the working tree into a device call (at most 64 MiB travel: tracked and untracked-not-ignored
files) by leaving weights a GPU run does not need at home, and put them back afterwards.

    python scripts/device_tree.py size                 # MiB that would travel now
    python scripts/device_tree.py hide                 # untrack every weights file but the newest version of MODEL
    python scripts/device_tree.py hide --keep mean-scale-hyperprior stem-msh   # ... and of these models
    python scripts/device_tree.py restore              # track them again (do this before any commit)

``hide`` removes the files from git's index only (``git rm --cached``; they stay on disk) and lists
them in ``.git/info/exclude`` between marker lines, so a device call neither carries them nor sees
them missing; ``restore`` re-adds exactly those files and deletes the marker block. While files are
hidden, ``git status`` shows them as deleted: ``hide`` installs a pre-commit hook that refuses every
commit until ``restore`` (which removes it) has run, and refuses to start with staged changes. Tests that decode old versions (golden files) fail
on a tree with hidden weights: on the device run the CUDA tests and scripts/train_gpu.sh only.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXCLUDE = ROOT / ".git" / "info" / "exclude"
HOOK = ROOT / ".git" / "hooks" / "pre-commit"
HOOK_TEXT = ("#!/bin/sh\n# device_tree.py hide\n"
             "echo 'weights are hidden for a device call: run python scripts/device_tree.py restore first' >&2\nexit 1\n")
BEGIN, END = "# device_tree.py hide: begin", "# device_tree.py hide: end"
MIB = 1 << 20
LIMIT_MIB = 64


def git(*args: str) -> str:
    res = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"device_tree: git {args[0]} failed: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}")
    return res.stdout


def tree_mib() -> float:
    """MiB of tracked and untracked-not-ignored files: what a device call carries besides `carry`."""
    names = git("ls-files", "-co", "--exclude-standard", "-z").split("\0")
    return sum((ROOT / n).stat().st_size for n in names if n and (ROOT / n).is_file()) / MIB


def hidden() -> list[str]:
    if not EXCLUDE.exists():
        return []
    lines = EXCLUDE.read_text().splitlines()
    if BEGIN not in lines:
        return []
    return [ln.lstrip("/") for ln in lines[lines.index(BEGIN) + 1 : lines.index(END)]]


def to_hide(keep: list[str]) -> list[str]:
    """Tracked weights files other than the newest version of each model in ``keep``."""
    from neuralcodec.models.manifest import find_version

    unknown = [m for m in keep if find_version(m) is None]
    if unknown:
        raise SystemExit(f"device_tree: no shipped weights for {', '.join(unknown)}")
    needed = {f"weights/{find_version(m)['file']}" for m in keep}
    tracked = git("ls-files", "weights").split()
    return [p for p in tracked if p.endswith(".safetensors") and p not in needed]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["size", "hide", "restore"])
    p.add_argument("--keep", nargs="+", default=["elic-context-hyperprior"], help="models whose newest weights travel")
    args = p.parse_args()
    if args.action == "size":
        print(f"{tree_mib():.1f} MiB would travel (limit {LIMIT_MIB} MiB); hidden now: {len(hidden())} files")
    elif args.action == "hide":
        if hidden():
            raise SystemExit("device_tree: files are already hidden; run `restore` first")
        if git("diff", "--cached", "--name-only").strip():
            raise SystemExit("device_tree: the index has staged changes; commit or unstage them first")
        paths = to_hide(args.keep)
        if HOOK.exists():
            raise SystemExit(f"device_tree: {HOOK} exists; it would be replaced by the hook that guards hidden files")
        text = EXCLUDE.read_text() if EXCLUDE.exists() else ""
        EXCLUDE.write_text(text.rstrip("\n") + "\n" + "\n".join([BEGIN, *("/" + q for q in paths), END]) + "\n")
        HOOK.parent.mkdir(exist_ok=True)
        HOOK.write_text(HOOK_TEXT)
        HOOK.chmod(0o755)
        if paths:
            git("rm", "--cached", "-q", "--", *paths)
        print(f"hid {len(paths)} weights files; {tree_mib():.1f} MiB would travel. `restore` before any commit.")
    else:
        paths = hidden()
        if paths:  # back into the index from HEAD first: only then forget the list
            git("reset", "-q", "--", *paths)
        if EXCLUDE.exists():
            lines = EXCLUDE.read_text().splitlines()
            if BEGIN in lines:
                lines = lines[: lines.index(BEGIN)] + lines[lines.index(END) + 1 :]
            EXCLUDE.write_text("\n".join(lines) + "\n")
        if HOOK.exists() and HOOK.read_text() == HOOK_TEXT:
            HOOK.unlink()
        print(f"restored {len(paths)} weights files; {tree_mib():.1f} MiB would travel")


if __name__ == "__main__":
    main()
