"""Tiled vs untiled transforms on real photos, for every shipped model.

For each Kodak image and model: encode untiled and with tiles forced on (``--tile`` latent
positions per side, so every image has interior, edge and corner tiles), count the latent
symbols that differ (the analysis is not normative, but tiles should not move it), and
compare the 8-bit reconstruction of the same latents untiled vs tiled (max |delta|, pixels
that differ).

    OMP_NUM_THREADS=1 python scripts/bench_tiling.py --images 4 --tile 16
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from neuralcodec.codec import decode_latent, encode_image  # noqa: E402
from neuralcodec.io.images import load_image  # noqa: E402
from neuralcodec.models.weights import load_model, read_manifest  # noqa: E402

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


@contextlib.contextmanager
def tiles(model, tile: int | None):
    """Force tiles of ``tile`` latent positions on ``model`` (None: as shipped)."""
    saved = model.tile, model.tile_above
    if tile is not None:
        model.tile, model.tile_above = tile, 0
    try:
        yield
    finally:
        model.tile, model.tile_above = saved


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--tile", type=int, default=16)
    ap.add_argument("--models", nargs="*", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    models = args.models or sorted(read_manifest()["models"])
    paths = sorted(KODAK.glob("kodim*.png"))[: args.images]
    print(f"| model | images | latent values differing (tiled analysis) | max abs delta, 8-bit (tiled synthesis) | pixels differing |")
    print("|---|---|---|---|---|")
    for mid in models:
        loaded = load_model(mid)
        m = loaded.model
        q = loaded.default_quality
        n_sym = n_diff_sym = max_d = n_px = n_diff_px = 0
        for p in paths:
            img = load_image(p)
            enc = encode_image(img, mid, q)
            with tiles(m, args.tile):
                enc_t = encode_image(img, mid, q)
            lat, hdr = decode_latent(enc.data)
            lat_t, _ = decode_latent(enc_t.data)
            # the dequantized latents differ exactly where the coded symbols (or their means) do
            n_sym += lat.numel()
            n_diff_sym += int((lat != lat_t).sum())
            ref = m.reconstruct(lat[None], q, hdr.height, hdr.width)
            with tiles(m, args.tile):
                til = m.reconstruct(lat[None], q, hdr.height, hdr.width)
            d = np.abs(ref.astype(np.int16) - til.astype(np.int16))
            max_d, n_px, n_diff_px = max(max_d, int(d.max())), n_px + d.size, n_diff_px + int((d > 0).sum())
        print(f"| {mid} | {len(paths)} | {n_diff_sym} of {n_sym} | {max_d} | {n_diff_px} of {n_px} |", flush=True)


if __name__ == "__main__":
    main()
