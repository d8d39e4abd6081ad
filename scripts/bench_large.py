"""Peak memory and time to encode and decode large images, each in a fresh process.

Images: a real photo (Kodak kodim23, upscaled with Lanczos) and a flat grey image, at 2048^2,
4096^2 and 8192^2. Each ``ncodec encode`` (PNG -> .ncf) and ``ncodec decode`` (.ncf -> PNG) runs
as its own process on one thread (OMP_NUM_THREADS=1): peak RSS of the whole process, wall
time and CPU time (user + system; on a shared machine the wall time also counts waiting for a
core) including start-up, reading and writing the files.

    OMP_NUM_THREADS=1 python scripts/bench_large.py --sizes 2048 4096 8192
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT.parent / "shared" / "data" / "kodak" / "kodim23.png"


def run(args: list[str]) -> tuple[float, float, float]:
    """Run ``ncodec ARGS`` in a fresh process on one thread: wall seconds, CPU seconds (user +
    system) and peak RSS (MiB) of that process alone (``os.wait4`` rusage; RUSAGE_CHILDREN would
    be the max over all children)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    t = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "neuralcodec.cli", *args, "-q", "-f"], env=env)
    _, status, usage = os.wait4(p.pid, 0)
    if status:
        raise RuntimeError(f"ncodec {' '.join(args)} failed with status {status}")
    return time.perf_counter() - t, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def make_image(kind: str, side: int, folder: Path) -> Path:
    from PIL import Image

    path = folder / f"{kind}-{side}.png"
    if kind == "photo":
        im = Image.open(PHOTO).convert("RGB").resize((side, side), Image.LANCZOS)
    else:
        im = Image.new("RGB", (side, side), (128, 128, 128))
    im.save(path, compress_level=1)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096, 8192])
    ap.add_argument("--kinds", nargs="+", default=["photo", "flat"])
    ap.add_argument("--model", default="mean-scale-hyperprior")
    args = ap.parse_args()
    print("| image | side | file KiB | encode: peak RSS MiB | encode: CPU s (wall s) | decode: peak RSS MiB | decode: CPU s (wall s) |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for side in args.sizes:
            for kind in args.kinds:
                src = make_image(kind, side, Path(tmp))
                ncf = Path(tmp) / f"{kind}-{side}.ncf"
                out = Path(tmp) / f"{kind}-{side}-decoded.png"
                enc_s, enc_cpu, enc_mib = run(["encode", str(src), "-o", str(ncf), "--model", args.model])
                dec_s, dec_cpu, dec_mib = run(["decode", str(ncf), "-o", str(out), "--max-pixels", "0"])
                print(
                    f"| {kind} | {side} | {ncf.stat().st_size / 1024:.0f} | {enc_mib:.0f} | {enc_cpu:.1f} ({enc_s:.0f}) | "
                    f"{dec_mib:.0f} | {dec_cpu:.1f} ({dec_s:.0f}) |",
                    flush=True,
                )
                for f in (src, ncf, out):
                    f.unlink()


if __name__ == "__main__":
    main()
