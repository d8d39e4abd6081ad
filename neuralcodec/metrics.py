"""Image quality and rate-distortion comparison metrics used by the evaluation scripts."""

from __future__ import annotations

import numpy as np
import torch


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images (peak 255)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM (pytorch_msssim, compressai's dependency) between two uint8 RGB images (H, W, 3);
    NaN for images with a side of 160 pixels or less (too small for its five scales)."""
    from pytorch_msssim import ms_ssim as _ms_ssim

    if min(a.shape[:2]) <= 160:
        return float("nan")
    t = lambda x: torch.from_numpy(np.array(x)).permute(2, 0, 1)[None].double()  # noqa: E731
    return float(_ms_ssim(t(a), t(b), data_range=255.0))


def bd_rate(rate_a, dist_a, rate_b, dist_b) -> float:
    """Bjontegaard delta rate of curve B against curve A, in percent (negative: B needs fewer bits).

    Cubic fit of log-rate as a function of distortion (PSNR), integrated over the overlap.
    """
    la, lb = np.log(np.asarray(rate_a, float)), np.log(np.asarray(rate_b, float))
    da, db = np.asarray(dist_a, float), np.asarray(dist_b, float)
    if not all(np.isfinite(v).all() for v in (la, lb, da, db)) or min(len(da), len(db)) < 2:
        return float("nan")
    lo, hi = max(da.min(), db.min()), min(da.max(), db.max())
    if hi <= lo:
        return float("nan")
    pa, pb = np.polyfit(da, la, min(3, len(da) - 1)), np.polyfit(db, lb, min(3, len(db) - 1))
    ia = np.polyval(np.polyint(pa), hi) - np.polyval(np.polyint(pa), lo)
    ib = np.polyval(np.polyint(pb), hi) - np.polyval(np.polyint(pb), lo)
    return float((np.exp((ib - ia) / (hi - lo)) - 1) * 100)


def dist_at_rate(rate, dist, at: float) -> float:
    """Distortion of a measured curve at rate ``at`` (linear in log-rate; NaN outside the curve)."""
    order = np.argsort(rate)
    r, d = np.log(np.asarray(rate, float)[order]), np.asarray(dist, float)[order]
    if not (r[0] <= np.log(at) <= r[-1]):
        return float("nan")
    return float(np.interp(np.log(at), r, d))
