"""Start-up cost of the `ncodec` CLI: whole-process wall and CPU time (median of N runs) per
command, and which heavy modules it imports (torch, compressai's package, its dependencies).

    .venv/bin/python scripts/bench_startup.py                  # this checkout
    .venv/bin/python scripts/bench_startup.py --root /tmp/old  # another checkout, same venv

Each command runs as ``python -m neuralcodec.cli ...`` with ``PYTHONPATH=<root>`` and
``OMP_NUM_THREADS=1``; ``decode`` decodes one Kodak image (768x512) coded with the default model
at its default quality (encoded once, before the timed runs). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "kodak" / "kodim23.png"

# Heavy modules a command may import (seen with `python -X importtime`); "compressai" is the
# package's __init__ (all its subpackages), "compressai.layers" one of the layer modules the models use.
PROBES = ("torch", "compressai.layers", "compressai", "torch_geometric", "pandas", "scipy.stats")


def _env(root: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def _cli(root: Path, args: list[str], importtime: bool = False) -> subprocess.CompletedProcess:
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "neuralcodec.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(root), cwd=root)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(root: Path, args: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) seconds of each of ``runs`` whole-process runs."""
    walls, cpus = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), _cpu()
        res = _cli(root, args)
        walls.append(time.perf_counter() - t)
        cpus.append(_cpu() - c)
        if res.returncode != 0:
            raise SystemExit(f"ncodec {' '.join(args)} failed: {res.stderr.strip()[-500:]}")
    return walls, cpus


def _importtime(root: Path, args: list[str]) -> list[tuple[str, int]]:
    """(module, self microseconds) of every module the command imports (``-X importtime``)."""
    rows = []
    for line in _cli(root, args, importtime=True).stderr.splitlines():
        if line.startswith("import time:") and not line.rstrip().endswith("| imported package"):
            self_us, _, name = line[len("import time:"):].split("|")
            rows.append((name.strip(), int(self_us)))
    return rows


def imported(root: Path, args: list[str]) -> list[str]:
    """Modules among PROBES that the command imports."""
    names = {name for name, _ in _importtime(root, args)}
    return [p for p in PROBES if p in names]


def import_seconds_by_package(root: Path, args: list[str]) -> dict[str, float]:
    """Import time (sum of the modules' own times) per top-level package, largest first."""
    total: dict[str, float] = {}
    for name, us in _importtime(root, args):
        top = name.split(".")[0]
        total[top] = total.get(top, 0.0) + us / 1e6
    return dict(sorted(total.items(), key=lambda kv: -kv[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=ROOT, help="checkout whose neuralcodec package is measured")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--image", type=Path, default=KODAK)
    args = ap.parse_args()
    root = args.root.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        ncf, png = Path(tmp) / "img.ncf", Path(tmp) / "out.png"
        res = _cli(root, ["encode", str(args.image), "-o", str(ncf), "-q"])
        if res.returncode != 0:
            raise SystemExit(f"encode failed: {res.stderr.strip()[-500:]}")
        decode = f"ncodec decode img.ncf ({args.image.name})"
        commands = {
            "ncodec --help": ["--help"],
            "ncodec info img.ncf": ["info", str(ncf)],
            "ncodec models": ["models"],
            decode: ["decode", str(ncf), "-o", str(png), "-f", "-q"],
        }
        load = os.getloadavg()[0]
        print(f"root {root}, {args.runs} runs each, OMP_NUM_THREADS=1, load average {load:.1f} on {os.cpu_count()} cores\n")
        print(f"| command | median wall s | min wall s | median CPU s | imports (of {', '.join(PROBES)}) |")
        print("|---|---|---|---|---|")
        for name, cli_args in commands.items():
            walls, cpus = timed(root, cli_args, args.runs)
            heavy = ", ".join(imported(root, cli_args)) or "none"
            print(f"| `{name}` | {statistics.median(walls):.2f} | {min(walls):.2f} | {statistics.median(cpus):.2f} | {heavy} |")
        by_package = import_seconds_by_package(root, commands[decode])
        top = ", ".join(f"{k} {v:.2f}" for k, v in list(by_package.items())[:6])
        print(f"\n`{decode}`, import time by package (s, one `-X importtime` run): {top}; "
              f"all imports {sum(by_package.values()):.2f}")


if __name__ == "__main__":
    main()
