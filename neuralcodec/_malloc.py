"""glibc malloc tuning for torch on CPU.

With glibc's default thresholds, large tensor buffers are mmapped and returned to the kernel
on every free, so most CPU time goes to page faults. Raising the mmap and trim thresholds keeps
them in the heap; measured 1.3-1.7x faster inference and training here (docs/benchmarks.md).
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 1 << 30


def tune_malloc() -> bool:
    """Raise glibc's mmap/trim thresholds unless the user set them; returns True if applied."""
    if not sys.platform.startswith("linux") or os.environ.get("NEURALCODEC_NO_MALLOC_TUNING"):
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _THRESHOLD))
    except (OSError, AttributeError):
        return False


def release_free_memory() -> None:
    """Hand freed heap memory back to the kernel (glibc ``malloc_trim``). With the thresholds
    above nothing is returned on free, so a large image's tile loop calls this between tiles to
    keep its peak RSS near what is live (measured: 2048^2 decode 1.32 -> 1.09 GB peak)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018  (present in glibc only)
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc()
