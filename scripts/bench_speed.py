#!/usr/bin/env python
"""Whole-image encode/decode time on Kodak 768x512: neuralcodec vs compressai's mbt2018-mean.

Both run the same architecture and channel counts with our trained transforms (compressai's model
gets our g_a/g_s/h_a/h_s and entropy tables; it has no gain units, so it codes at gain 1). Times are
wall-clock medians per image, in one process, with the same thread count.

    python scripts/bench_speed.py --limit 6 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from compressai.models import MeanScaleHyperprior
from PIL import Image

import neuralcodec as nc
from neuralcodec._malloc import tune_malloc
from neuralcodec.io.images import LoadedImage
from neuralcodec.models.weights import load_model, load_state
from neuralcodec.io.files import list_images


def compressai_twin(model_id: str) -> MeanScaleHyperprior:
    ours = load_model(model_id).model
    cfg = ours.gain.log_gain.shape[1], ours.g_a[0].out_channels
    twin = MeanScaleHyperprior(N=cfg[1], M=cfg[0])
    load_state(twin, {k: v for k, v in ours.state_dict().items() if not k.startswith("gain.")})
    return twin.eval()


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    tune_malloc()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="mean-scale-hyperprior")
    p.add_argument("--data", default="../shared/data/kodak")
    p.add_argument("--limit", type=int, default=6)
    p.add_argument("--quality", type=float, default=None, help="default: the model's default quality")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    paths = [q for q in list_images(args.data) if Image.open(q).size == (768, 512)][: args.limit]
    twin = compressai_twin(args.model)
    rows = {k: [] for k in ("ours_enc", "ours_dec", "cai_enc", "cai_dec")}
    sizes = {"ours": 0, "cai": 0}
    for i, path in enumerate(paths):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        img = LoadedImage(rgb, 3, 8)
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255).contiguous()
        t_e, enc = timed(lambda: nc.encode_image(img, args.model, args.quality))
        t_d, _ = timed(lambda: nc.decode(enc.data))
        with torch.no_grad():
            c_e, comp = timed(lambda: twin.compress(x))
            c_d, _ = timed(lambda: twin.decompress(comp["strings"], comp["shape"]))
        if i == 0:
            continue  # warm-up: first calls allocate and pick kernels
        for k, v in zip(rows, (t_e, t_d, c_e, c_d)):
            rows[k].append(v)
        sizes["ours"] += len(enc.data)
        sizes["cai"] += sum(len(s[0]) for s in comp["strings"])
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"{len(paths) - 1} Kodak 768x512 images (after 1 warm-up), {args.threads} threads, model {args.model}")
    print(f"{'':<26}{'encode s':>10}{'decode s':>10}")
    print(f"{'neuralcodec (q=' + str(args.quality) + ')':<26}{med['ours_enc']:>10.3f}{med['ours_dec']:>10.3f}")
    print(f"{'compressai mbt2018-mean':<26}{med['cai_enc']:>10.3f}{med['cai_dec']:>10.3f}")
    print(f"ratio compressai/ours: encode {med['cai_enc'] / med['ours_enc']:.2f}x, decode {med['cai_dec'] / med['ours_dec']:.2f}x")


if __name__ == "__main__":
    main()
