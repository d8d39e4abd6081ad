#!/usr/bin/env python
"""Does learning on latents pay? One task trained on WaLLoC latents and on pixels, same budget.

Task: rotation prediction (0, 90, 180 or 270 degrees; real labels from real photos). Each photo
is resized so its short side is 256, centre-cropped to 256x256 and rotated four ways. The set is
compressed once: ``.ncf`` files (read back with ``LatentDataset``, entropy decoding only) and, for
the pixel baseline, lossless PNG. Both classifiers share one trunk on a 16x16 grid; the latent
model feeds it the 48x16x16 latent, the pixel model a learned 16x16-stride patch embedding of the
3x256x256 image (48 channels too). Same seed, optimizer, batch and epochs; every epoch reads
every file from disk again, so throughput includes decoding.

    python scripts/latent_learning.py --photos ../shared/data/train --epochs 8 --threads 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

import neuralcodec as nc
from neuralcodec._malloc import tune_malloc
from neuralcodec.io.files import list_images
from neuralcodec.latents import LatentDataset

SIDE = 256
MODEL = "walloc-16x"


def square(path: Path) -> Image.Image:
    im = Image.open(path).convert("RGB")
    s = SIDE / min(im.size)
    im = im.resize((max(SIDE, round(im.width * s)), max(SIDE, round(im.height * s))), Image.BICUBIC)
    left, top = (im.width - SIDE) // 2, (im.height - SIDE) // 2
    return im.crop((left, top, left + SIDE, top + SIDE))


def prepare(photos: list[Path], work: Path, test_share: float) -> None:
    """Write ``work/{png,ncf}/{train,test}/{rotation}/{photo}`` once."""
    if (work / "done").exists():
        return
    n_test = int(len(photos) * test_share)
    for i, path in enumerate(tqdm(photos, desc="compressing the set", unit="photo")):
        split = "test" if i < n_test else "train"
        base = square(path)
        ims = [base.rotate(90 * k) for k in range(4)]
        for k, (im, enc) in enumerate(zip(ims, nc.encode_images(ims, MODEL))):
            for kind, write in (("png", lambda p: im.save(p, optimize=True)),
                                ("ncf", lambda p: p.write_bytes(enc.data))):
                out = work / kind / split / str(k) / f"{path.stem}.{kind}"
                out.parent.mkdir(parents=True, exist_ok=True)
                write(out)
    (work / "done").write_text("ok")


class PngDataset(Dataset):
    def __init__(self, root: Path) -> None:
        self.root, self.paths = root, sorted(root.rglob("*.png"))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        rgb = np.asarray(Image.open(self.paths[i]).convert("RGB"))
        x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div(255)
        return x, int(self.paths[i].relative_to(self.root).parts[0])

    def bytes_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.paths)


def classifier(stem: nn.Module) -> nn.Module:
    """``stem`` brings the input to 48 x 16 x 16; the trunk is the same for both inputs."""
    return nn.Sequential(
        stem,
        nn.Conv2d(48, 96, 3, padding=1), nn.ReLU(),
        nn.Conv2d(96, 128, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(128, 128, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 4),
    )


def run(name: str, model: nn.Module, train: Dataset, test: Dataset, epochs: int, batch: int) -> dict:
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(0)
    loader = DataLoader(train, batch_size=batch, shuffle=True, generator=gen)
    seen, t_train = 0, 0.0
    for epoch in range(epochs):
        model.train()
        t = time.perf_counter()
        for x, y in tqdm(loader, desc=f"{name} epoch {epoch + 1}/{epochs}", leave=False):
            loss = nn.functional.cross_entropy(model(x), torch.as_tensor(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(x)
        t_train += time.perf_counter() - t
    model.eval()
    correct, t = 0, time.perf_counter()
    with torch.no_grad():
        for x, y in DataLoader(test, batch_size=batch):
            correct += int((model(x).argmax(1) == torch.as_tensor(y)).sum())
    t_test = time.perf_counter() - t
    return {
        "accuracy_pct": 100 * correct / len(test),
        "train_images_per_s": seen / t_train,
        "inference_images_per_s": len(test) / t_test,
        "bytes_read_per_epoch": train.bytes_on_disk(),
        "train_images": len(train), "test_images": len(test),
    }


def main() -> None:
    tune_malloc()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", default="../shared/data/train")
    p.add_argument("--limit", type=int, default=0, help="first N photos only (0: all)")
    p.add_argument("--work", default="runs/latent-learning", help="where the compressed set is written")
    p.add_argument("--test-share", type=float, default=0.2)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    photos = list_images(args.photos)
    photos = photos[: args.limit] if args.limit else photos
    work = Path(args.work)
    prepare(photos, work, args.test_share)

    label = lambda rel: int(rel.parts[0])  # noqa: E731
    results = {
        "latent": run("latent", classifier(nn.Identity()),
                      LatentDataset(work / "ncf" / "train", target=label),
                      LatentDataset(work / "ncf" / "test", target=label), args.epochs, args.batch),
        "pixel": run("pixel", classifier(nn.Conv2d(3, 48, 16, stride=16)),
                     PngDataset(work / "png" / "train"), PngDataset(work / "png" / "test"), args.epochs, args.batch),
    }
    lat, pix = results["latent"], results["pixel"]
    print(f"rotation prediction, {lat['train_images']} train / {lat['test_images']} test images, {args.epochs} epochs")
    print(f"{'':<8}{'accuracy %':>11}{'train img/s':>13}{'infer img/s':>13}{'MB/epoch':>10}")
    for name, r in results.items():
        print(f"{name:<8}{r['accuracy_pct']:>11.1f}{r['train_images_per_s']:>13.1f}"
              f"{r['inference_images_per_s']:>13.1f}{r['bytes_read_per_epoch'] / 1e6:>10.1f}")
    print(f"latent/pixel: training {lat['train_images_per_s'] / pix['train_images_per_s']:.1f}x, "
          f"inference {lat['inference_images_per_s'] / pix['inference_images_per_s']:.1f}x, "
          f"bytes {pix['bytes_read_per_epoch'] / lat['bytes_read_per_epoch']:.1f}x fewer; "
          f"accuracy gap {pix['accuracy_pct'] - lat['accuracy_pct']:+.1f} points")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
