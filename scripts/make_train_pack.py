#!/usr/bin/env python
"""Make the self-contained training pack for a lent GPU: random crops of the training photos as
lossless WebP (exact pixels) or, with --jpeg Q, 4:4:4 JPEG (about 2.8x the crops per MiB), in tar
chunks small enough to travel one per device call.

    python scripts/make_train_pack.py --out pack            # pack/pack-000.tar ... (<= 60 MiB in all)
    python scripts/make_train_pack.py --out pack --crop 320 --jpeg 90 --budget-mib 34.5 --chunk-mib 35.5
                                  # one chunk beside the wheels (scripts/gpu_session.sh): 825 crops of 320²

Store crops larger than the training crops (train_gpu.sh's CROP, 256 by default): the sampler cuts
random crops from them, where equal sizes leave it only flips.

A device call carries the whole working tree (tracked and untracked files) plus what it names, at
most 64 MiB; the chunk size defaults to what is left of that beside the tree, less 2 MiB.

Each chunk unpacks into a flat folder of images that scripts/train.py reads like any photo
folder (--data). See scripts/train_gpu.sh for the whole GPU workflow.
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from device_tree import tree_mib  # scripts/device_tree.py: what a device call carries
from neuralcodec.io.files import list_images

MIB = 1 << 20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data/train")
    p.add_argument("--out", default="pack")
    p.add_argument("--crop", type=int, default=256, help="side of the stored crops (training crops are cut from them)")
    p.add_argument("--per-image", type=int, default=1, help="crops per photo")
    p.add_argument("--budget-mib", type=float, default=60.0)
    p.add_argument("--chunk-mib", type=float, default=0.0, help="0: what a device call has room for (see above)")
    p.add_argument("--jpeg", type=int, default=0, metavar="Q",
                   help="0: lossless WebP; Q: JPEG at quality Q with full-resolution chroma (825 crops of 320² in 34.3 MiB at 90, "
                        "771 of 256² in 59.8 MiB lossless; most training photos are JPEGs already)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    if not 0 <= a.jpeg <= 100:
        raise SystemExit(f"make_train_pack: --jpeg takes 0 (lossless WebP) or a JPEG quality 1-100, not {a.jpeg}")
    if not a.chunk_mib:
        a.chunk_mib = min(14.0, 62.0 - tree_mib())
        if a.chunk_mib < 1:
            raise SystemExit(f"make_train_pack: the working tree ({tree_mib():.0f} MiB) leaves no room in a 64 MiB device call: hide weights first (scripts/device_tree.py hide)")
    rng = np.random.default_rng(a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("pack-*.tar"):
        old.unlink()
    paths = list_images(a.data)
    order = rng.permutation(len(paths))  # a budget cut keeps a random subset, not the first folders
    chunk, tar, total, count = 0, None, 0, 0
    for i in order:
        try:
            im = Image.open(paths[i]).convert("RGB")
        except (OSError, ValueError) as exc:  # one unreadable photo is skipped, not the whole pack
            print(f"make_train_pack: skipping {paths[i]}: {exc}", file=sys.stderr)
            continue
        c = a.crop
        if min(im.size) < c:
            s = c / min(im.size)
            im = im.resize((max(c, round(im.width * s)), max(c, round(im.height * s))), Image.BICUBIC)
        for k in range(a.per_image):
            left, top = (int(rng.integers(0, d - c + 1)) for d in im.size)
            buf = io.BytesIO()
            crop = im.crop((left, top, left + c, top + c))
            if a.jpeg:
                crop.save(buf, format="JPEG", quality=a.jpeg, subsampling=0)
            else:
                crop.save(buf, format="WEBP", lossless=True, quality=100, method=4)
            data = buf.getvalue()
            if total + len(data) > a.budget_mib * MIB:
                break
            if tar is None or tar.fileobj.tell() + len(data) + 2048 > a.chunk_mib * MIB:
                if tar is not None:
                    tar.close()
                tar = tarfile.open(out / f"pack-{chunk:03d}.tar", "w")
                chunk += 1
            info = tarfile.TarInfo(f"{i:05d}_{k}.{'jpg' if a.jpeg else 'webp'}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            total, count = total + len(data), count + 1
        if total + 200_000 > a.budget_mib * MIB:
            break
    if tar is not None:
        tar.close()
    print(f"{count} crops of {a.crop}x{a.crop} from {len(paths)} photos, {total / MIB:.1f} MiB in {chunk} chunks under {out}/")


if __name__ == "__main__":
    main()
