"""What every image codec in the registry provides to the container and the CLI."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from .._malloc import release_free_memory
from ..errors import CorruptFileError
from .tiling import Span, grid, window


@dataclass
class Coded:
    """One image after coding: section payloads, digest of its quantized latents, reconstruction."""

    sections: list[bytes]
    latent_digest: bytes
    x_hat: Tensor | None  # (1, 3, H, W) padded reconstruction in [0, 1], if it was computed
    latent: Tensor | None = None  # (1, M, h, w) dequantized latent y-hat, before any inverse gain


def to_uint8(x: Tensor, height: int, width: int) -> np.ndarray:
    """8-bit (height, width, 3) array of the top-left corner of an image (3, H, W) in [0, 1]."""
    x = x[:, :height, :width].mul(255).round_().clamp_(0, 255).to(torch.uint8)
    return x.permute(1, 2, 0).contiguous().cpu().numpy()


def _as_float(x: Tensor) -> Tensor:
    """Pixels in [0, 1], NCHW-contiguous (other layouts pick kernels with other round-off)."""
    return x.float().div_(255).contiguous() if x.dtype == torch.uint8 else x.contiguous()


class ImageCodec(nn.Module):
    """Base class: transforms plus an ordered list of entropy stages, one section per stage.

    Above ``tile_above`` latent positions per side, the analysis and synthesis transforms run
    on ``tile`` x ``tile`` latent tiles, each extended by the transform's receptive-field
    radius (``analysis_margin``, ``synthesis_margin``, latent positions) and cropped, so their
    memory does not grow with the image; the result equals the untiled one up to float
    round-off (tests/test_tiling.py). Smaller images take the untiled path.
    """

    downsampling: int = 64
    levels: int
    latent_stride: int = 16  # image pixels per latent position (the scale of g_a and g_s)
    tile: int = 48
    tile_above: int = 96
    # compressai's conv(k=5, s=2, p=2) x 4: latent j sees pixels 16j - 30 .. 16j + 30 -> 2
    analysis_margin: int = 2
    # deconv(k=5, s=2, p=2, output_padding=1) x 4: pixel p sees latents p/16 -/+ (1 + 1/2 + 1/4 + 1/8) -> 2
    synthesis_margin: int = 2

    def tiled(self, height: int, width: int) -> bool:
        """Whether a latent of this size is transformed in tiles."""
        return max(height, width) > self.tile_above

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
    def transform_image(self, x: Tensor) -> Tensor:
        """Latent (B, M, H/16, W/16) of images (B, 3, H, W): float in [0, 1], or uint8 (then
        converted tile by tile, so a large image never exists as float32 in full)."""
        s = self.latent_stride
        B, h, w = x.shape[0], x.shape[-2] // s, x.shape[-1] // s
        if not self.tiled(h, w):
            return self.g_a(_as_float(x))
        out = None
        for i in range(B):
            for rows, cols in grid(h, w, self.tile):
                release_free_memory()
                y = self._analysis_tile(x[i : i + 1], rows, cols)
                if out is None:
                    out = y.new_empty(B, y.shape[1], h, w)
                out[i : i + 1, :, rows[0] : rows[1], cols[0] : cols[1]] = y
        return out

    def _analysis_tile(self, x: Tensor, rows: Span, cols: Span) -> Tensor:
        """g_a output over latent ``rows`` x ``cols`` of one image (1, 3, H, W)."""
        s, m = self.latent_stride, self.analysis_margin
        (r0, r1), (c0, c1) = window(rows, m, x.shape[-2] // s), window(cols, m, x.shape[-1] // s)
        y = self.g_a(_as_float(x[..., r0 * s : r1 * s, c0 * s : c1 * s]))
        return y[..., rows[0] - r0 : rows[1] - r0, cols[0] - c0 : cols[1] - c0]

    @torch.no_grad()
    def synthesize(self, latent: Tensor, quality: float) -> Tensor:
        """Image (B, 3, 16h, 16w) in [0, 1] from a dequantized latent (B, M, h, w), one image at a
        time (some convolution kernels change their round-off with the batch size, and the
        decoder always runs one image)."""
        return torch.cat([self._synthesize_one(latent[i : i + 1], quality) for i in range(latent.shape[0])])

    def _synthesize_one(self, latent: Tensor, quality: float) -> Tensor:
        h, w = latent.shape[-2:]
        if not self.tiled(h, w):
            return self.g_s(self.synthesis_input(latent, quality)).clamp_(0, 1)
        s = self.latent_stride
        out = latent.new_empty(1, 3, h * s, w * s)
        for rows, cols in grid(h, w, self.tile):
            out[..., rows[0] * s : rows[1] * s, cols[0] * s : cols[1] * s] = (
                self._synthesis_tile(latent, quality, rows, cols).clamp_(0, 1)
            )
        return out

    def _synthesis_tile(self, latent: Tensor, quality: float, rows: Span, cols: Span) -> Tensor:
        """g_s output (1, 3, 16 * len(rows), 16 * len(cols)) over latent ``rows`` x ``cols``."""
        s, m = self.latent_stride, self.synthesis_margin
        (r0, r1), (c0, c1) = window(rows, m, latent.shape[-2]), window(cols, m, latent.shape[-1])
        x = self.g_s(self.synthesis_input(latent[..., r0:r1, c0:c1].contiguous(), quality))
        return x[..., (rows[0] - r0) * s : (rows[1] - r0) * s, (cols[0] - c0) * s : (cols[1] - c0) * s]

    @torch.no_grad()
    def reconstruct(self, latent: Tensor, quality: float, height: int, width: int) -> np.ndarray:
        """The decoder's 8-bit output (height, width, 3) from one image's latent (1, M, h, w):
        :meth:`synthesize` cropped to the original size; large images tile by tile, straight
        into the uint8 array, so no full-size float image is held."""
        h, w = latent.shape[-2:]
        if not self.tiled(h, w):
            return to_uint8(self.synthesize(latent, quality)[0], height, width)
        s = self.latent_stride
        rgb = np.empty((height, width, 3), dtype=np.uint8)
        for rows, cols in grid(h, w, self.tile):
            top, left = rows[0] * s, cols[0] * s
            if top < height and left < width:
                release_free_memory()  # what the previous tile (or the entropy decoding) freed
                x = self._synthesis_tile(latent, quality, rows, cols).clamp_(0, 1)
                part = to_uint8(x[0], height - top, width - left)
                rgb[top : top + part.shape[0], left : left + part.shape[1]] = part
        return rgb

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
