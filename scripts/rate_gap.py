#!/usr/bin/env python
"""Training pass against real file, per quality: does the training objective see what the file gets?

For each image and quality, prints the training pass's rate (noisy latents, as the loss sees it)
and PSNR (straight-through rounded latents) in fp32 and in bf16 autocast, the fp32 pass with the
rounded rate term (``train.py --rate round``), and the real file's bpp and PSNR
(``codec.encode_image``, header included).

    python scripts/rate_gap.py --model elic-context-hyperprior@7 --images kodim07 --qualities 1 3.5 6
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from neuralcodec import codec
from neuralcodec.io.images import load_image
from neuralcodec.metrics import psnr
from neuralcodec.models.manifest import find_version, parse_ref
from neuralcodec.models.registry import get_spec
from neuralcodec.models.weights import verified_file
from neuralcodec.train.loop import warm_start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="elic-context-hyperprior")
    p.add_argument("--images", nargs="+", default=["kodim07"])
    p.add_argument("--qualities", type=float, nargs="+", default=[1.0, 3.5, 6.0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    model_id, version = parse_ref(args.model)
    entry = find_version(model_id, version=version)
    if entry is None:
        raise SystemExit(f"no installed weights for {args.model}")
    net = get_spec(model_id).build()
    warm_start(net, str(verified_file(entry)[0]))  # as training loads them
    net.train()  # the training pass: noisy latents for the rate, straight-through rounding for the pixels
    for name in args.images:
        image = load_image(Path(args.data) / f"{name}.png")
        h, w = image.rgb.shape[:2]
        if h % net.downsampling or w % net.downsampling:
            raise SystemExit(f"{name}: {w}x{h} is not a multiple of {net.downsampling}")
        x = torch.from_numpy(image.rgb.copy()).permute(2, 0, 1)[None].float().div(255)
        for q in args.qualities:
            cells = []
            for label, bf16, rounded in (("fp32", False, False), ("bf16", True, False), ("rounded rate", False, True)):
                torch.manual_seed(0)
                with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                    out = net(x, torch.tensor([q]), ste=True, rate_round=rounded)
                bits = sum(float(-torch.log2(out[k].float()).sum()) for k in ("y_likelihoods", "z_likelihoods"))
                mse = float((out["x_hat"].float().clamp(0, 1) - x).pow(2).mean()) * 255**2
                cells.append(f"{label} {bits / (h * w):.4f} bpp {10 * math.log10(255**2 / mse):.2f} dB")
            enc = codec.encode_image(image, args.model, q, reconstruct=True)
            cells.append(f"file {enc.bpp:.4f} bpp {psnr(image.rgb, enc.rgb):.2f} dB")
            print(f"{name} q{q:g}: training " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
