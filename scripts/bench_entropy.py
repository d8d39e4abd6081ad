#!/usr/bin/env python
"""Entropy-coder benchmark: our constriction-based coder vs compressai's rANS, same symbols and tables.

Symbols are the real quantized latents (and their scale-table rows) of Kodak images under the
shipped model, so the distributions are the ones the coder sees in practice. Both coders use the
same 16-bit integer tables; overhead is measured against their ideal information content.

    python scripts/bench_entropy.py --limit 8
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from compressai import ans
from PIL import Image

from neuralcodec._malloc import tune_malloc
from neuralcodec.entropy import coder
from neuralcodec.models.weights import load_model
from neuralcodec.io.files import list_images


def kodak_latents(model_id: str, data: str, limit: int, quality: float):
    m = load_model(model_id).model
    out = []
    for path in list_images(data)[:limit]:
        x = torch.from_numpy(np.asarray(Image.open(path).convert("RGB"))).permute(2, 0, 1)[None].float().div(255)
        x = torch.nn.functional.pad(x, (0, -x.shape[3] % 64, 0, -x.shape[2] % 64), mode="replicate")
        with torch.no_grad():
            g, _ = m.gain(torch.full((1,), quality))
            y = m.g_a(x) * g
            z_hat = m._z_stage.dequantize(m._z_stage.quantize(m.h_a(y)))
            idx, means_q = m._y_params(z_hat)
            sym = m._y_stage.quantize(y, means_q)
        out.append((sym[0].numpy().ravel(), idx[0].numpy().ravel()))
    return m._y_stage.tables, m.gaussian_conditional, out


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    tune_malloc()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="mean-scale-hyperprior")
    p.add_argument("--data", default="../shared/data/kodak")
    p.add_argument("--limit", type=int, default=8)
    p.add_argument("--quality", type=float, default=0.75)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    tables, gc, latents = kodak_latents(args.model, args.data, args.limit, args.quality)
    cdfs, lengths, offsets = gc._quantized_cdf.tolist(), gc._cdf_length.tolist(), gc._offset.tolist()

    n = sum(s.size for s, _ in latents)
    ideal = sum(tables.ideal_bits(s, i) for s, i in latents)
    ours_bytes = [coder.encode(s, i, tables) for s, i in latents]
    for (s, i), b in zip(latents, ours_bytes):
        assert np.array_equal(coder.decode(b, i, tables), s)
    enc = ans.RansEncoder()
    theirs_bytes = [enc.encode_with_indexes(s.tolist(), i.tolist(), cdfs, lengths, offsets) for s, i in latents]
    dec = ans.RansDecoder()
    for (s, i), b in zip(latents, theirs_bytes):
        assert dec.decode_with_indexes(b, i.tolist(), cdfs, lengths, offsets) == s.tolist()

    t_ours_enc = best_of(lambda: [coder.encode(s, i, tables) for s, i in latents], args.repeat)
    t_ours_dec = best_of(lambda: [coder.decode(b, i, tables) for (_, i), b in zip(latents, ours_bytes)], args.repeat)
    t_cai_enc = best_of(lambda: [enc.encode_with_indexes(s.tolist(), i.tolist(), cdfs, lengths, offsets) for s, i in latents], args.repeat)
    t_cai_dec = best_of(lambda: [dec.decode_with_indexes(b, i.tolist(), cdfs, lengths, offsets) for (_, i), b in zip(latents, theirs_bytes)], args.repeat)
    lists = [(s.tolist(), i.tolist()) for s, i in latents]
    t_cai_enc_core = best_of(lambda: [enc.encode_with_indexes(s, i, cdfs, lengths, offsets) for s, i in lists], args.repeat)

    bits_ours = 8 * sum(len(b) for b in ours_bytes)
    bits_cai = 8 * sum(len(b) for b in theirs_bytes)
    print(f"{len(latents)} Kodak images, {n} symbols, model {args.model} quality {args.quality}, "
          f"{torch.get_num_threads()} threads; ideal {ideal / n:.4f} bits/symbol")
    print(f"{'coder':<34}{'enc Msym/s':>11}{'dec Msym/s':>11}{'overhead':>10}")
    print(f"{'neuralcodec (constriction ANS)':<34}{n / t_ours_enc / 1e6:>11.2f}{n / t_ours_dec / 1e6:>11.2f}{(bits_ours / ideal - 1) * 100:>9.3f}%")
    print(f"{'compressai rANS (incl. tolist)':<34}{n / t_cai_enc / 1e6:>11.2f}{n / t_cai_dec / 1e6:>11.2f}{(bits_cai / ideal - 1) * 100:>9.3f}%")
    print(f"{'compressai rANS (call only, enc)':<34}{n / t_cai_enc_core / 1e6:>11.2f}")


if __name__ == "__main__":
    main()
