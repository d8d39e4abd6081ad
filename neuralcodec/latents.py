"""Compressed-domain learning: models and datasets that work on our latents, not on pixels.

The latent of an image is the dequantized ŷ its ``.ncf`` file entropy-codes: (M, h, w) with
h, w = padded size / 16 for every model here. ``encode_latents`` computes it from images;
``LatentDataset`` reads it straight from a folder of ``.ncf`` files by entropy decoding only
(no synthesis transform), and both give the same tensors bit for bit.

    import neuralcodec as nc
    from neuralcodec.latents import LatentDataset, encode_latents, decode_latents

    z = encode_latents(["a.png", "b.png"], model="factorized-prior")   # (2, M, h, w) if same size
    ds = LatentDataset("compressed/", target=lambda path: path.parent.name)
    latent, label = ds[0]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from . import codec
from .errors import InputError
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
