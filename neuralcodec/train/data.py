"""Training crops sampled from a folder of photos held in memory as uint8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..io.files import list_images

class CropSampler:
    """Random crops with horizontal flips, drawn with an explicit generator (resumable)."""

    def __init__(self, folder: str | Path, crop: int, progress: bool = True) -> None:
        paths = list_images(folder)
        if not paths:
            raise FileNotFoundError(f"no images found under {folder}")
        self.crop = crop
        self.images: list[Tensor] = []
        iterator = paths
        if progress:
            from tqdm import tqdm

            iterator = tqdm(paths, desc="loading training images", unit="img")
        for p in iterator:
            with Image.open(p) as im:
                im = im.convert("RGB")
                if min(im.size) < crop:
                    s = crop / min(im.size)
                    im = im.resize((max(crop, round(im.width * s)), max(crop, round(im.height * s))), Image.BICUBIC)
                self.images.append(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1))

    def sample(self, batch: int, gen: torch.Generator) -> Tensor:
        """A float batch (B, 3, crop, crop) in [0, 1]."""
        c = self.crop
        idx = torch.randint(len(self.images), (batch,), generator=gen).tolist()
        out = torch.empty(batch, 3, c, c, dtype=torch.uint8)
        for b, i in enumerate(idx):
            img = self.images[i]
            top = int(torch.randint(img.shape[1] - c + 1, (1,), generator=gen))
            left = int(torch.randint(img.shape[2] - c + 1, (1,), generator=gen))
            patch = img[:, top : top + c, left : left + c]
            if bool(torch.randint(2, (1,), generator=gen)):
                patch = patch.flip(-1)
            out[b] = patch
        return out.float().div_(255)
