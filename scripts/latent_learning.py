#!/usr/bin/env python
"""Does learning on latents pay? One task trained on WaLLoC latents and on pixels, same budget.

Task: rotation prediction (0, 90, 180 or 270 degrees; real labels from real photos). Each photo
is resized so its short side is 256, centre-cropped to 256x256 and rotated four ways. The set is
compressed once: ``.ncf`` files (read back with ``LatentDataset``, entropy decoding only) and, for
the pixel baseline, lossless PNG. Both classifiers share one trunk on a 16x16 grid; the latent
model feeds it the 48x16x16 latent, the pixel model a learned 16x16-stride patch embedding of the
3x256x256 image (48 channels too). Same seed, optimizer, batch and epochs; every epoch reads
every file from disk again, so throughput includes decoding.

Pipelines (``--pipelines``, comma list; the default is the original pair):

* ``latent-folder``: ``LatentDataset`` over the folder of ``.ncf`` files, entropy decoding every epoch;
* ``latent-shards``: the same files as tar shards written by ``neuralcodec.bulk`` (from the PNGs,
  which are lossless, so the latents are the same), read by ``LatentShards``;
* ``latent-shards-cached``: the same with ``LatentShards(cache=...)``: the first epoch decodes and
  fills a memory-mapped file, later epochs read the float32 latents from it;
* ``pixel``: the PNGs, decoded every epoch;
* ``pixel-cached``: the PNGs through the same kind of cache (uint8 pixels memory-mapped), so the
  pixel model gets what the cached latents get.

The first epoch and the later ones are timed separately (a cache only helps the later ones).
``--json FILE`` merges this run's pipelines into FILE and prints all of them, so pipelines can be
run one command at a time.

    python scripts/latent_learning.py --photos ../shared/data/train --epochs 8 --threads 2
    python scripts/latent_learning.py --epochs 20 --threads 1 --pipelines latent-shards-cached --json out.json
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
from torch.utils.data import DataLoader, Dataset, IterableDataset
from tqdm import tqdm

import neuralcodec as nc
from neuralcodec import bulk
from neuralcodec._malloc import tune_malloc
from neuralcodec.io.files import list_images
from neuralcodec.latents import LatentDataset, LatentShards

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


def prepare_shards(work: Path, shard_size: int) -> None:
    """``work/shards/{train,test}/shard-*.tar`` from the PNGs (resumes; labels: the rotation folder)."""
    for split in ("train", "test"):
        bulk.encode_tree(work / "png" / split, work / "shards" / split, MODEL, shard_size=shard_size,
                         labels="folder", progress=True)


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


class CachedPixels(Dataset):
    """A PngDataset whose decoded images are kept in a memory-mapped uint8 file after their first read."""

    def __init__(self, png: PngDataset, path: Path) -> None:
        self.png, self.shape = png, (len(png), 3, SIDE, SIDE)
        path.parent.mkdir(parents=True, exist_ok=True)
        size = len(png) + int(np.prod(self.shape))
        if not path.exists() or path.stat().st_size != size:
            with open(path, "wb") as f:
                f.truncate(size)
        self.mm = np.memmap(path, dtype=np.uint8, mode="r+")
        self.nbytes = int(np.prod(self.shape))

    def __len__(self) -> int:
        return len(self.png)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        n, label = len(self.png), int(self.png.paths[i].relative_to(self.png.root).parts[0])
        pixels = self.mm[n:].reshape(self.shape)
        if not self.mm[i]:
            pixels[i] = np.asarray(Image.open(self.png.paths[i]).convert("RGB")).transpose(2, 0, 1)
            self.mm[i] = 1
        return torch.from_numpy(pixels[i].copy()).float().div(255), label

    def bytes_on_disk(self) -> int:
        return self.png.bytes_on_disk()


def classifier(stem: nn.Module) -> nn.Module:
    """``stem`` brings the input to 48 x 16 x 16; the trunk is the same for both inputs."""
    return nn.Sequential(
        stem,
        nn.Conv2d(48, 96, 3, padding=1), nn.ReLU(),
        nn.Conv2d(96, 128, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(128, 128, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 4),
    )


def run(name: str, model: nn.Module, train: Dataset, test: Dataset, epochs: int, batch: int,
        cached_bytes: int | None = None) -> dict:
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(0)
    streamed = isinstance(train, IterableDataset)  # LatentShards: shuffled by its epoch seed
    loader = DataLoader(train, batch_size=batch) if streamed else DataLoader(train, batch_size=batch, shuffle=True,
                                                                              generator=gen)
    seen, wall, cpu = 0, [], []
    for epoch in range(epochs):
        if streamed:
            train.set_epoch(epoch)
        model.train()
        t, c = time.perf_counter(), time.process_time()
        for x, y in tqdm(loader, desc=f"{name} epoch {epoch + 1}/{epochs}", leave=False):
            loss = nn.functional.cross_entropy(model(x), torch.as_tensor(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(x)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    model.eval()
    correct, t = 0, time.perf_counter()
    with torch.no_grad():
        for x, y in DataLoader(test, batch_size=batch):
            correct += int((model(x).argmax(1) == torch.as_tensor(y)).sum())
    t_test = time.perf_counter() - t
    n, later = len(train), max(1, epochs - 1)
    return {
        "accuracy_pct": 100 * correct / len(test),
        "train_images_per_s": seen / sum(wall),
        "train_images_per_cpu_s": seen / sum(cpu),
        "epoch_wall_s": wall, "epoch_cpu_s": cpu,
        "first_epoch_cpu_s": cpu[0],
        "later_epoch_cpu_s": sum(cpu[1:]) / later if epochs > 1 else None,
        "inference_images_per_s": len(test) / t_test,
        "bytes_read_per_epoch": train.bytes_on_disk(),
        "bytes_read_later_epochs": cached_bytes if cached_bytes is not None else train.bytes_on_disk(),
        "train_images": n, "test_images": len(test), "epochs": epochs,
    }


def report(results: dict[str, dict]) -> None:
    """Throughput in CPU seconds of the (single-threaded) process, robust to other jobs on the
    machine; wall-clock images/s beside it."""
    any_r = next(iter(results.values()))
    print(f"rotation prediction, {any_r['train_images']} train / {any_r['test_images']} test images")
    print(f"{'pipeline':<22}{'ep':>3}{'acc %':>7}{'img/s':>8}{'img/cpu-s':>10}{'1st ep cpu-s':>13}"
          f"{'later ep cpu-s':>15}{'later ep/cpu-s':>15}{'MB 1st ep':>10}{'MB later':>9}")
    for name, r in results.items():
        later = r["later_epoch_cpu_s"]
        print(f"{name:<22}{r['epochs']:>3}{r['accuracy_pct']:>7.1f}{r['train_images_per_s']:>8.1f}"
              f"{r['train_images_per_cpu_s']:>10.1f}{r['first_epoch_cpu_s']:>13.2f}{later or 0:>15.2f}"
              f"{1 / later if later else 0:>15.3f}{r['bytes_read_per_epoch'] / 1e6:>10.1f}"
              f"{r['bytes_read_later_epochs'] / 1e6:>9.1f}")
    pix = results.get("pixel")
    for name, r in results.items():
        if pix is None or name.startswith("pixel"):
            continue
        later = (f", later epochs {pix['later_epoch_cpu_s'] / r['later_epoch_cpu_s']:.2f}x"
                 if r["later_epoch_cpu_s"] and pix["later_epoch_cpu_s"] else "")
        print(f"{name} / pixel: training {r['train_images_per_cpu_s'] / pix['train_images_per_cpu_s']:.2f}x per "
              f"CPU second over all epochs (first epoch {pix['first_epoch_cpu_s'] / r['first_epoch_cpu_s']:.2f}x"
              f"{later}; wall clock {r['train_images_per_s'] / pix['train_images_per_s']:.2f}x), "
              f"accuracy gap {pix['accuracy_pct'] - r['accuracy_pct']:+.1f} points")


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
    p.add_argument("--pipelines", default="latent-folder,pixel",
                   help="comma list of latent-folder, latent-shards, latent-shards-cached, pixel, pixel-cached")
    p.add_argument("--shard-size", type=int, default=256, help="images per tar shard (latent-shards*)")
    p.add_argument("--json", help="merge the results into this file (and print everything it holds)")
    args = p.parse_args()
    pipelines = [x.strip() for x in args.pipelines.split(",") if x.strip()]
    known = {"latent-folder", "latent-shards", "latent-shards-cached", "pixel", "pixel-cached"}
    if not pipelines or set(pipelines) - known:
        p.error(f"--pipelines takes a comma list of {', '.join(sorted(known))}")
    torch.set_num_threads(args.threads)
    photos = list_images(args.photos)
    photos = photos[: args.limit] if args.limit else photos
    work = Path(args.work)
    prepare(photos, work, args.test_share)
    if any(x.startswith("latent-shards") for x in pipelines):
        prepare_shards(work, args.shard_size)

    label = lambda rel: int(rel.parts[0])  # noqa: E731
    results = {}
    for name in pipelines:
        cached = None
        if name == "latent-folder":
            train, test = (LatentDataset(work / "ncf" / s, target=label) for s in ("train", "test"))
        elif name.startswith("latent-shards"):
            t = time.perf_counter()
            cache = work / "cache" / "latents-train.bin" if name.endswith("cached") else None
            if cache is not None:  # a fresh cache: the first epoch decodes everything
                for f in (cache, cache.with_name(cache.name + ".json")):
                    f.unlink(missing_ok=True)
            train = LatentShards(work / "shards" / "train", shuffle=True, seed=0, cache=cache)
            print(f"{name}: indexed {len(train)} samples in {len(train.shards)} shards in "
                  f"{time.perf_counter() - t:.2f} s" + (" (headers read, cache file made)" if cache else ""))
            test = LatentShards(work / "shards" / "test")
            cached = train.cache.nbytes if cache is not None else None
        else:
            train, test = PngDataset(work / "png" / "train"), PngDataset(work / "png" / "test")
            if name == "pixel-cached":
                cache = work / "cache" / "pixels-train.bin"
                cache.unlink(missing_ok=True)
                train = CachedPixels(train, cache)
                cached = train.nbytes
        stem = nn.Identity() if name.startswith("latent") else nn.Conv2d(3, 48, 16, stride=16)
        results[name] = run(name, classifier(stem), train, test, args.epochs, args.batch, cached)
        results[name]["threads"] = args.threads
        if args.json:  # after each pipeline, so an interrupted run keeps what it measured
            path = Path(args.json)
            merged = json.loads(path.read_text()) if path.exists() else {}
            merged[name] = results[name]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(merged, indent=2))
    report(json.loads(Path(args.json).read_text()) if args.json else results)


if __name__ == "__main__":
    main()
