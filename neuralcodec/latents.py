"""Compressed-domain learning: models and datasets that work on our latents, not on pixels.

The latent of an image is the dequantized ŷ its ``.ncf`` file entropy-codes: (M, h, w) with
h, w = padded size / 16 for every model here. ``encode_latents`` computes it from images;
``LatentDataset`` reads it straight from a folder of ``.ncf`` files by entropy decoding only
(no synthesis transform), and both give the same tensors bit for bit. ``LatentShards`` reads
the tar shards :mod:`neuralcodec.bulk` writes, split across ranks and DataLoader workers, with an
optional memory-mapped cache of the decoded latents (``LatentCache``).

    import neuralcodec as nc
    from neuralcodec.latents import LatentDataset, LatentShards, encode_latents, decode_latents

    z = encode_latents(["a.png", "b.png"], model="factorized-prior")   # (2, M, h, w) if same size
    ds = LatentDataset("compressed/", target=lambda path: path.parent.name)
    latent, label = ds[0]
    shards = LatentShards("shards/", shuffle=True, cache="latents.bin")  # (latent, .cls label) items
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from . import bitstream, codec
from .errors import InputError, NeuralCodecError
from .io.files import write_atomic
from .models import DEFAULT_MODEL
from .models.weights import load_model


def encode_latents(
    images: Iterable[codec.ImageSource], model: str = DEFAULT_MODEL, quality: float | None = None,
    device: str = "cpu", batch: int = 4,
) -> Tensor | list[Tensor]:
    """Latents of images: one (B, M, h, w) tensor if all have the same padded size, else a list."""
    out = [e.latent for e in codec.encode_images(images, model, quality, device, batch=batch)]
    if out and all(t.shape == out[0].shape for t in out):
        return torch.stack(out)
    return out


def decode_latents(
    latents: Tensor, model: str = DEFAULT_MODEL, quality: float | None = None, size: tuple[int, int] | None = None,
) -> list[np.ndarray]:
    """Images (H, W, 3) uint8 from a batch of latents (B, M, h, w): the synthesis transform only.
    ``size`` (height, width) crops the padding away."""
    loaded = load_model(model, str(latents.device))
    q = loaded.default_quality if quality is None else quality
    x = loaded.model.synthesize(latents, q).mul(255).round_().clamp_(0, 255).to(torch.uint8)
    if size is not None:
        x = x[:, :, : size[0], : size[1]]
    return [im.permute(1, 2, 0).contiguous().cpu().numpy() for im in x]


class LatentDataset(Dataset):
    """The ``.ncf`` files under ``root`` (recursively, sorted) as latents (M, h, w).

    Items are latents, or ``(latent, target(path relative to root))`` when ``target`` is given
    (e.g. ``lambda p: p.parts[0]`` for one folder per class). Files are entropy-decoded on each
    access, on ``device``; a damaged file raises the same errors as :func:`neuralcodec.decode`.
    """

    def __init__(self, root: str | Path, target: Callable[[Path], Any] | None = None, device: str = "cpu") -> None:
        self.root = Path(root)
        self.paths = sorted(p for p in self.root.rglob("*.ncf") if p.is_file())
        if not self.paths:
            raise InputError(f"no .ncf files under {root}")
        self.target, self.device = target, device

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Tensor | tuple[Tensor, Any]:
        latent, _ = codec.decode_latent(self.paths[i].read_bytes(), self.device)
        if self.target is None:
            return latent
        return latent, self.target(self.paths[i].relative_to(self.root))

    def bytes_on_disk(self) -> int:
        """Total size of the files (what one epoch reads)."""
        return sum(p.stat().st_size for p in self.paths)


@dataclass(frozen=True)
class _Sample:
    shard: int  # index into LatentShards.shards
    key: str
    ncf: tuple[int, int]  # (offset, size) of the .ncf member's bytes in the tar
    cls: tuple[int, int] | None  # same for the .cls member, if any


def _tar_samples(shard: int, path: Path) -> list[_Sample]:
    """The samples of one tar in member order: members grouped by key (WebDataset: the name up to
    the first dot of its last component); other extensions than .ncf and .cls are ignored."""
    parts: dict[str, dict[str, tuple[int, int]]] = {}
    try:
        with tarfile.open(path, "r:") as tar:
            for m in tar:
                if not m.isfile():
                    continue
                folder, _, name = m.name.rpartition("/")
                stem, dot, ext = name.partition(".")
                if dot and ext in ("ncf", "cls"):
                    parts.setdefault(f"{folder}/{stem}" if folder else stem, {})[ext] = (m.offset_data, m.size)
    except (tarfile.TarError, OSError) as exc:
        raise InputError(f"{path}: not a readable tar shard ({exc})") from None
    out = []
    for key, p in parts.items():
        if "ncf" not in p:
            raise InputError(f"{path}: sample '{key}' has no .ncf member")
        out.append(_Sample(shard, key, p["ncf"], p.get("cls")))
    return out


class LatentShards(IterableDataset):
    """Tar shards of ``.ncf`` files (the WebDataset layout :mod:`neuralcodec.bulk` writes) as latents.

    ``shards``: a folder (its ``*.tar``, sorted) or a list of tar paths. Items are latents
    (M, h, w), or ``(latent, label)`` when ``target(key)`` is given or every sample has a ``.cls``
    member (then the label is its integer). Each epoch (:meth:`set_epoch`) the shard list is
    shuffled with ``seed + epoch`` (if ``shuffle``), identically on every rank; shard ``j`` of
    that order goes to rank ``j % world_size``, and a rank's shards are dealt to its DataLoader
    workers the same way; a worker then reads its samples (permuted too, if ``shuffle``). So each
    sample comes once per epoch, in an order fixed by seed and epoch. Give at least
    ``world_size * num_workers`` shards, or some workers get none; ranks get unequal counts unless
    their shards hold equal numbers of samples.

    ``cache``: a file path; decoded latents are kept there memory-mapped (:class:`LatentCache`),
    so epochs after the first skip entropy decoding. Rank and world size come from
    ``torch.distributed`` when it is initialized, else they are 0 and 1 unless given.
    """

    def __init__(
        self, shards: str | Path | Iterable[str | Path], target: Callable[[str], Any] | None = None,
        shuffle: bool = False, seed: int = 0, cache: str | Path | None = None, device: str = "cpu",
        rank: int | None = None, world_size: int | None = None,
    ) -> None:
        if isinstance(shards, (str, Path)):
            folder = Path(shards)
            if not folder.is_dir():
                raise InputError(f"{folder} is not a folder of tar shards")
            self.shards = sorted(folder.glob("*.tar"))
        else:
            self.shards = [Path(s) for s in shards]
        if not self.shards:
            raise InputError(f"no .tar shards in {shards}")
        self.samples = [s for i, path in enumerate(self.shards) for s in _tar_samples(i, path)]
        if not self.samples:
            raise InputError(f"no .ncf samples in the shards of {shards}")
        has_cls = {s.cls is not None for s in self.samples}
        if target is None and has_cls == {True, False}:
            raise InputError("some samples have a .cls label and others do not")
        self.labelled = target is not None or has_cls == {True}
        self.target, self.shuffle, self.seed, self.device, self.epoch = target, shuffle, seed, device, 0
        dist = torch.distributed.is_available() and torch.distributed.is_initialized()
        self.rank = rank if rank is not None else (torch.distributed.get_rank() if dist else 0)
        self.world_size = world_size if world_size is not None else (torch.distributed.get_world_size() if dist else 1)
        self.cache = LatentCache(Path(cache), self.keys, self._read_ncf) if cache is not None else None

    @property
    def keys(self) -> list[str]:
        return [s.key for s in self.samples]

    def __len__(self) -> int:
        """All samples in all shards (one rank sees about len / world_size of them)."""
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Call before each epoch (as with DistributedSampler) for a new shuffle."""
        self.epoch = epoch

    def bytes_on_disk(self) -> int:
        """Total size of the shards (what an uncached epoch reads, over all ranks)."""
        return sum(p.stat().st_size for p in self.shards)

    def indices(self, worker: int = 0, workers: int = 1) -> list[int]:
        """Sample indices, in order, that ``worker`` of ``workers`` on this rank yields this epoch."""
        order = list(range(len(self.shards)))
        if self.shuffle:
            random.Random(self.seed + self.epoch).shuffle(order)
        mine = set(order[self.rank :: self.world_size][worker::workers])
        out = [i for sh in order if sh in mine for i in self._by_shard()[sh]]
        if self.shuffle:
            random.Random(f"{self.seed}/{self.epoch}/{self.rank}/{worker}").shuffle(out)
        return out

    def _by_shard(self) -> dict[int, list[int]]:
        if not hasattr(self, "_shard_index"):
            self._shard_index: dict[int, list[int]] = {}
            for i, s in enumerate(self.samples):
                self._shard_index.setdefault(s.shard, []).append(i)
        return self._shard_index

    def _read(self, i: int, span: tuple[int, int], files: dict[int, BinaryIO] | None = None) -> bytes:
        shard = self.samples[i].shard
        if files is None:
            with open(self.shards[shard], "rb") as f:
                f.seek(span[0])
                return f.read(span[1])
        if shard not in files:
            files[shard] = open(self.shards[shard], "rb")
        files[shard].seek(span[0])
        return files[shard].read(span[1])

    def _read_ncf(self, i: int) -> bytes:
        return self._read(i, self.samples[i].ncf)

    def _decode(self, i: int, files: dict[int, BinaryIO]) -> Tensor:
        s = self.samples[i]
        try:
            latent, _ = codec.decode_latent(self._read(i, s.ncf, files), self.device)
        except NeuralCodecError as exc:
            raise type(exc)(f"{self.shards[s.shard]}: {s.key}: {exc}") from None
        return latent

    def __iter__(self) -> Iterator[Tensor | tuple[Tensor, Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        files: dict[int, BinaryIO] = {}
        try:
            for i in self.indices(worker, workers):
                latent = self.cache.get(i) if self.cache is not None else None
                if latent is None:
                    latent = self._decode(i, files)
                    if self.cache is not None:
                        self.cache.put(i, latent)
                latent = latent.to(self.device)
                if not self.labelled:
                    yield latent
                elif self.target is not None:
                    yield latent, self.target(self.samples[i].key)
                else:
                    yield latent, int(self._read(i, self.samples[i].cls, files))
        finally:
            for f in files.values():
                f.close()


class LatentCache:
    """Decoded latents of a dataset's samples in one memory-mapped file, filled as they are decoded.

    Layout: one byte per sample (1: filled), padded to 64 bytes, then every sample's latent as
    float32 (C, h, w), in sample order. A JSON sidecar (``path + ".json"``) names the keys, the
    model id and weights digest of every file, a digest of their headers (quality, size, latent
    digest) and the shapes; when any of these differs from the data's, the cache is rebuilt
    (empty). Several processes (DataLoader workers, ranks on one machine) can fill one cache: each
    writes only its own samples. The shapes come from the headers (one sample per model is decoded
    to learn its latent channels and stride when the cache is built).
    """

    def __init__(self, path: Path, keys: list[str], read: Callable[[int], bytes]) -> None:
        self.path, self.sidecar = path, path.with_name(path.name + ".json")
        headers = [bitstream.unpack(read(i)).header for i in range(len(keys))]
        weights = sorted({f"{h.model_id}:{h.weights_digest.hex()}" for h in headers})
        content = hashlib.blake2b(digest_size=16)
        for key, h in zip(keys, headers):
            content.update(f"{key}\0{h.model_id}\0{h.weights_digest.hex()}\0{h.quality_milli}\0{h.height}\0{h.width}"
                           f"\0{h.pad_bottom}\0{h.pad_right}\0{h.latent_digest.hex()}\n".encode())
        meta = {"format": 1, "keys": keys, "weights": weights, "content": content.hexdigest()}
        old = self._read_sidecar()
        if old is not None and all(old.get(k) == v for k, v in meta.items()) and self._size(old["shapes"]) == (
            path.stat().st_size if path.exists() else -1
        ):
            self.shapes = [tuple(s) for s in old["shapes"]]
        else:
            self.shapes = self._shapes(headers, read)
            self._create({**meta, "shapes": [list(s) for s in self.shapes]})
        self.flags_at = 0
        self.data_at = -(-len(keys) // 64) * 64
        sizes = [int(np.prod(s)) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        self._mm: np.memmap | None = None

    def _read_sidecar(self) -> dict | None:
        try:
            return json.loads(self.sidecar.read_text())
        except (OSError, ValueError):
            return None

    @staticmethod
    def _shapes(headers: list[bitstream.Header], read: Callable[[int], bytes]) -> list[tuple[int, int, int]]:
        per_model: dict[tuple[str, bytes], tuple[int, int]] = {}  # -> (channels, stride)
        shapes = []
        for i, h in enumerate(headers):
            ph, pw = h.height + h.pad_bottom, h.width + h.pad_right
            if (h.model_id, h.weights_digest) not in per_model:
                latent, _ = codec.decode_latent(read(i))
                per_model[h.model_id, h.weights_digest] = (latent.shape[0], ph // latent.shape[1])
            c, s = per_model[h.model_id, h.weights_digest]
            shapes.append((c, ph // s, pw // s))
        return shapes

    def _size(self, shapes: list) -> int:
        return -(-len(shapes) // 64) * 64 + 4 * sum(int(np.prod(s)) for s in shapes)

    def _create(self, meta: dict) -> None:
        """A new, empty cache file (sparse zeros) and its sidecar, each replaced atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.sidecar.unlink(missing_ok=True)
        write_atomic(self.path, lambda tmp: os.truncate(tmp, self._size(meta["shapes"])))
        write_atomic(self.sidecar, json.dumps(meta).encode())

    def __getstate__(self) -> dict:  # DataLoader workers map the file themselves
        return {**self.__dict__, "_mm": None}

    def _map(self) -> np.memmap:
        if self._mm is None:
            self._mm = np.memmap(self.path, dtype=np.uint8, mode="r+")
        return self._mm

    def _floats(self, i: int) -> np.ndarray:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self._map()[self.data_at + 4 * a : self.data_at + 4 * b].view(np.float32)

    def get(self, i: int) -> Tensor | None:
        """Sample ``i``'s latent (C, h, w), or None if it was not filled yet."""
        if not self._map()[self.flags_at + i]:
            return None
        return torch.from_numpy(self._floats(i).copy()).view(self.shapes[i])

    def put(self, i: int, latent: Tensor) -> None:
        self._floats(i)[:] = latent.detach().to("cpu", torch.float32).reshape(-1).numpy()
        self._map()[self.flags_at + i] = 1  # after the data: a filled flag never points at a half-written latent

    @property
    def nbytes(self) -> int:
        """Bytes of latents an epoch reads from the cache."""
        return 4 * self.offsets[-1]
