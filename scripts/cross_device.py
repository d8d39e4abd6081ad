#!/usr/bin/env python
"""Encode under one device/thread setting, decode under others, and check the conformance rule
(docs/bitstream.md): latents exact (or LatentMismatchError, never garbage), pixels within the
tolerance of the encoder's reconstruction.

    python scripts/cross_device.py --limit 8                       # CPU: threads, oneDNN ISA levels, mkldnn off
    python scripts/cross_device.py --decode threads=2 device=cuda   # CPU -> GPU, when a GPU is there
    python scripts/cross_device.py --encode device=cuda --decode threads=2   # GPU -> CPU

A setting is a comma list of ``threads=N``, ``isa=SSE41|AVX2|AVX512_CORE`` (oneDNN's
``ONEDNN_MAX_CPU_ISA``: the kernels another CPU would run), ``mkldnn=0`` (PyTorch's own
convolutions) and ``device=cpu|cuda``. Each setting runs in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DECODE = ["threads=1", "threads=2", "isa=SSE41,threads=1", "isa=AVX2,threads=2", "mkldnn=0,threads=1"]


def parse(setting: str) -> dict[str, str]:
    out = {"threads": "1", "device": "cpu"}
    for part in filter(None, setting.split(",")):
        key, _, value = part.partition("=")
        if key not in ("threads", "isa", "mkldnn", "device"):
            raise SystemExit(f"cross_device: unknown setting '{key}'")
        out[key] = value
    return out


def _spawn(role: str, setting: str, folder: Path, args: argparse.Namespace) -> None:
    s = parse(setting)
    env = {**os.environ, "OMP_NUM_THREADS": s["threads"]}
    if "isa" in s:
        env["ONEDNN_MAX_CPU_ISA"] = s["isa"]
    cmd = [sys.executable, __file__, "--worker", role, "--setting", setting, "--dir", str(folder),
           "--data", args.data, "--limit", str(args.limit), "--models", *args.models]
    subprocess.run(cmd, check=True, env=env)


def _worker(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    import neuralcodec as nc
    from neuralcodec.conformance import deviation
    from neuralcodec.errors import LatentMismatchError, NeuralCodecError
    from neuralcodec.evaluation import load_folder
    from neuralcodec.io.images import LoadedImage
    from neuralcodec.models.weights import load_model

    s = parse(args.setting)
    torch.set_num_threads(int(s["threads"]))
    if s.get("mkldnn") == "0":
        torch.backends.mkldnn.enabled = False
    folder = Path(args.dir)
    if args.worker == "encode":
        images = load_folder(args.data, args.limit)
        for model in args.models:
            lo, hi = load_model(model).quality_range
            for q in (lo, round((lo + hi) / 2, 3), hi):
                for i, rgb in enumerate(images):
                    enc = nc.encode_image(LoadedImage(rgb, 3, 8), model, q, s["device"], reconstruct=True)
                    name = f"{model}_{q:g}_{i:02d}"
                    (folder / f"{name}.ncf").write_bytes(enc.data)
                    np.save(folder / f"{name}.npy", enc.rgb)
        return
    rows = []
    for f in sorted(folder.glob("*.ncf")):
        ref = np.load(f.with_suffix(".npy"))
        row = {"model": f.stem.rsplit("_", 2)[0], "file": f.name}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dec = nc.decode(f.read_bytes(), device=s["device"])
            d = deviation(ref, dec.rgb)
            row.update(max_abs=d.max_abs, differing=d.differing, samples=ref.size, psnr=d.psnr, within=d.within())
        except LatentMismatchError:
            row["error"] = "LatentMismatchError"
        except NeuralCodecError as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
    (folder / f"decode-{args.setting}.json").write_text(json.dumps(rows))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encode", default="threads=2", help="setting the files are encoded under")
    p.add_argument("--decode", nargs="+", default=DEFAULT_DECODE, help="settings to decode under")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    p.add_argument("--limit", type=int, default=8, help="first N images")
    p.add_argument("--models", nargs="+", default=None, help="default: every shipped model")
    p.add_argument("--json", help="also write the table as JSON here")
    p.add_argument("--worker", choices=["encode", "decode"], help=argparse.SUPPRESS)
    p.add_argument("--setting", help=argparse.SUPPRESS)
    p.add_argument("--dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.models is None:
        from neuralcodec.models.manifest import read_manifest

        args.models = sorted(read_manifest()["models"])
    if args.worker:
        return _worker(args)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"encoding {args.limit} images x 3 qualities x {len(args.models)} models under '{args.encode}' ...", flush=True)
        _spawn("encode", args.encode, folder, args)
        table = []
        for setting in [args.encode] + [d for d in args.decode if d != args.encode]:
            print(f"decoding under '{setting}' ...", flush=True)
            _spawn("decode", setting, folder, args)
            rows = json.loads((folder / f"decode-{setting}.json").read_text())
            for model in args.models:
                mine = [r for r in rows if r["model"] == model]
                ok = [r for r in mine if "error" not in r]
                table.append({
                    "decode": setting, "model": model, "files": len(mine),
                    "latent_mismatch": sum(r.get("error") == "LatentMismatchError" for r in mine),
                    "other_errors": sum("error" in r and r["error"] != "LatentMismatchError" for r in mine),
                    "bit_exact": sum(r["differing"] == 0 for r in ok),
                    "max_abs": max((r["max_abs"] for r in ok), default=0),
                    "samples_differing": sum(r["differing"] for r in ok),
                    "samples": sum(r["samples"] for r in ok),
                    "min_psnr": min((r["psnr"] for r in ok), default=float("inf")),
                    "within_tolerance": sum(r["within"] for r in ok),
                })
    print(f"\nencoded under '{args.encode}'; {args.limit} images of {args.data}, 3 qualities per model\n")
    print("| decoded under | model | files | latent mismatches | other errors | bit-exact files | max abs diff | samples differing | min PSNR dB | within tolerance |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in table:
        psnr = "inf" if r["min_psnr"] == float("inf") else f"{r['min_psnr']:.1f}"
        print(f"| {r['decode']} | {r['model']} | {r['files']} | {r['latent_mismatch']} | {r['other_errors']} | "
              f"{r['bit_exact']} | {r['max_abs']} | {r['samples_differing']} of {r['samples']:,} | {psnr} | "
              f"{r['within_tolerance']}/{r['files'] - r['latent_mismatch'] - r['other_errors']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1))
    bad = [r for r in table if r["other_errors"] or r["within_tolerance"] < r["files"] - r["latent_mismatch"] - r["other_errors"]]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
