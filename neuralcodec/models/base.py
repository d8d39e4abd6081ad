"""What every image codec in the registry provides to the container and the CLI."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import CorruptFileError


@dataclass
class Coded:
    """One image after coding: section payloads, digest of its quantized latents, reconstruction."""

    sections: list[bytes]
    latent_digest: bytes
    x_hat: Tensor | None  # (1, 3, H, W) padded reconstruction in [0, 1], if it was computed
    latent: Tensor | None = None  # (1, M, h, w) dequantized latent y-hat, before any inverse gain


class ImageCodec(nn.Module):
    """Base class: transforms plus an ordered list of entropy stages, one section per stage."""

    downsampling: int = 64
    levels: int

    def check_quality(self, quality: float) -> None:
        """Raise ValueError unless ``quality`` is in the model's range [0, levels] (below 1: extrapolated)."""
        if not (0.0 <= quality <= self.levels):
            raise ValueError(f"quality must be between 0 and {self.levels}, got {quality}")

    def prepare_for_coding(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def export_tables(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def compress(self, x: Tensor, quality: float, reconstruct: bool = True) -> list[Coded]:  # pragma: no cover
        raise NotImplementedError

    def decode_latent(self, sections: list[bytes], height: int, width: int, quality: float, device: str = "cpu") -> tuple[Tensor, bytes]:  # pragma: no cover
        """Entropy-decode one image's latent y-hat (no synthesis) and the digest of its symbols."""
        raise NotImplementedError

    def synthesis_input(self, latent: Tensor, quality: float) -> Tensor:
        """What the synthesis transform takes: the dequantized latent times the inverse gain."""
        _, ig = self.gain(torch.full((1,), float(quality), device=latent.device))
        return latent * ig

    @torch.no_grad()
    def synthesize(self, latent: Tensor, quality: float) -> Tensor:
        """Image in [0, 1] from a dequantized latent, one image at a time (some convolution
        kernels change their round-off with the batch size, and the decoder always runs one image)."""
        latent = self.synthesis_input(latent, quality)
        return torch.cat([self.g_s(latent[i : i + 1]).clamp_(0, 1) for i in range(latent.shape[0])])

    @torch.no_grad()
    def decompress(self, sections: list[bytes], height: int, width: int, quality: float, device: str = "cpu") -> Coded:
        """Decode one image's sections; ``height``/``width`` are the padded size."""
        latent, digest = self.decode_latent(sections, height, width, quality, device)
        return Coded(sections, digest, self.synthesize(latent, quality), latent)

    @staticmethod
    def latent_digest(symbols: list[np.ndarray]) -> bytes:
        """16-byte BLAKE2b of all quantized latents (int32 little-endian, stage order)."""
        h = hashlib.blake2b(digest_size=16)
        for s in symbols:
            h.update(np.ascontiguousarray(s, dtype="<i4").tobytes())
        return h.digest()

    @staticmethod
    def check_sections(sections: list[bytes], expected: int) -> None:
        if len(sections) != expected:
            raise CorruptFileError(f"expected {expected} sections for this model, file has {len(sections)}")
