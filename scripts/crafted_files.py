"""Time-to-error and peak RSS of decoding CRC-valid crafted files that claim 8192x8192 pixels.

    .venv/bin/python scripts/crafted_files.py                      # this checkout, every shipped model
    .venv/bin/python scripts/crafted_files.py --root /tmp/old --models mean-scale-hyperprior

Each case is a file written with the checkout's own ``bitstream.pack`` (so every CRC, and in
format 1.1 the binding digest, is valid) for a shipped model at its default quality, with the
right weights digest and section count, claiming 8192x8192:

* ``empty``: every section is the 4-byte escape count 0 and no ANS word;
* ``garbage``: every section is escape count 0 followed by 1 KiB of random ANS words.

Every case runs ``neuralcodec.decode(data, max_pixels=2**26)`` (the format's hard limit, so the
pixel limit does not stop it: where the API has no ``max_pixels``, plain ``decode``) in a fresh
process with ``OMP_NUM_THREADS=1``, stopped by an alarm after ``--timeout`` seconds (reported as
"stopped"); the table reports wall time until the
exception, its class, the process's peak RSS (VmHWM, model and imports included) and how far
decoding raised it above the peak before the call. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import inspect, json, os, signal, sys, time, warnings
import numpy as np
from PIL import Image
warnings.simplefilter("ignore")
import neuralcodec as nc
assert nc.__file__.startswith(os.getcwd()), nc.__file__  # the checkout asked for, not the installed one
from neuralcodec import bitstream
from neuralcodec.models.weights import load_model

model, case, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
loaded = load_model(model)
n = len(bitstream.unpack(nc.encode_image(Image.new('RGB', (64, 64)), model).data).sections)
rng = np.random.default_rng(0)
if case == "empty":
    sections = [bytes(4)] * n
else:
    sections = [bytes(4) + rng.integers(1, 2**32, 256, dtype=np.uint32).astype("<u4").tobytes() for _ in range(n)]
header = bitstream.Header(model, loaded.digest, int(round(loaded.default_quality * 1000)), 8192, 8192, 3, 8,
                          0, 0, 1, bytes(range(16)), bytes(16))
data = bitstream.pack(header, sections)
kw = {"max_pixels": 2**26} if "max_pixels" in inspect.signature(nc.decode).parameters else {}
hwm = lambda: int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
before = hwm()


class Limit(BaseException):
    pass


def stop(*_):
    raise Limit


signal.signal(signal.SIGALRM, stop)  # raised between torch calls: the peak RSS is still read
signal.alarm(limit)
t0 = time.perf_counter()
try:
    nc.decode(data, **kw)
    outcome = "decoded"
except Limit:
    outcome = f"stopped at the {limit} s limit"
except Exception as exc:
    outcome = type(exc).__name__
dt = time.perf_counter() - t0
print(json.dumps({"bytes": len(data), "seconds": dt, "outcome": outcome, "rss_mb": hwm(), "growth_mb": hwm() - before}))
"""


def run_case(root: Path, model: str, case: str, timeout: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore",
           "NEURALCODEC_WEIGHTS": os.environ.get("NEURALCODEC_WEIGHTS", str(ROOT / "weights"))}
    t0 = time.perf_counter()
    try:
        res = subprocess.run([sys.executable, "-c", CHILD, model, case, str(int(timeout))], capture_output=True,
                             text=True, env=env, timeout=timeout + 120, cwd=root)  # cwd first on sys.path: root's package
    except subprocess.TimeoutExpired:
        return {"bytes": "-", "seconds": time.perf_counter() - t0, "outcome": f"killed at {timeout + 120:g} s", "rss_mb": float("nan"),
                "growth_mb": float("nan")}
    if res.returncode != 0 or not res.stdout.strip():
        return {"bytes": "-", "seconds": time.perf_counter() - t0, "outcome": f"crash rc={res.returncode}",
                "rss_mb": float("nan"), "growth_mb": float("nan"), "stderr": res.stderr[-500:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=ROOT, help="checkout to measure (default: this one)")
    p.add_argument("--models", nargs="+", help="default: every model in weights/manifest.json")
    p.add_argument("--cases", nargs="+", default=["empty", "garbage"])
    p.add_argument("--timeout", type=float, default=300.0)
    args = p.parse_args()
    models = args.models or list(json.loads((ROOT / "weights" / "manifest.json").read_text())["models"])
    print("| model | case | file bytes | time to error (s) | outcome | peak RSS (MB) | growth in decode (MB) |")
    print("|---|---|---|---|---|---|---|")
    for m in models:
        for case in args.cases:
            r = run_case(args.root, m, case, args.timeout)
            print(f"| {m} | {case} | {r['bytes']} | {r['seconds']:.2f} | {r['outcome']} | {r['rss_mb']:.0f} | {r['growth_mb']:.0f} |", flush=True)
            if "stderr" in r:
                print(r["stderr"], file=sys.stderr)


if __name__ == "__main__":
    main()
