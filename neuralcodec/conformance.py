"""The conformance rule (docs/bitstream.md, "Conformance"): what a decoder must reproduce.

The latent symbols are normative and exact on every machine (or decoding raises
``LatentMismatchError``). The 8-bit reconstruction is normative up to a tolerance, because the
synthesis runs in floating point and its round-off differs between CPUs, kernels and devices
(as JPEG's IDCT does): on the machine and thread count that encoded, the decoder reproduces the
encoder's reconstruction bit for bit; elsewhere it stays within :data:`TOLERANCE` of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    max_abs: int  # largest |decoded - reference| allowed for any 8-bit sample
    min_psnr: float  # PSNR of the decoded image against the reference reconstruction, dB


# Measured worst case across oneDNN ISA levels (SSE4.1 .. AVX-512), mkldnn off, 1-2 threads and
# tiling: 1 level in about 2 of 100,000 samples (scripts/cross_device.py, docs/benchmarks.md); the
# bound leaves a 2x margin on the peak. A uniform 1-level error everywhere would be 48.1 dB.
TOLERANCE = Tolerance(max_abs=2, min_psnr=50.0)


@dataclass(frozen=True)
class Deviation:
    max_abs: int
    differing: int  # samples that differ at all
    psnr: float  # inf when identical

    def within(self, tol: Tolerance = TOLERANCE) -> bool:
        return self.max_abs <= tol.max_abs and self.psnr >= tol.min_psnr


def deviation(reference: np.ndarray, decoded: np.ndarray) -> Deviation:
    """How far a decoded uint8 image (H, W, C) lies from the reference reconstruction."""
    if reference.shape != decoded.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {decoded.shape}")
    diff = decoded.astype(np.int16) - reference.astype(np.int16)
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    psnr = float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))
    return Deviation(int(np.abs(diff).max(initial=0)), int(np.count_nonzero(diff)), psnr)
