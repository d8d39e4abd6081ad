"""Deterministic numerics for codec calls on CUDA: TF32 off, deterministic cuDNN, no autotuning.

TF32 matmuls and autotuned cuDNN kernels change float round-off from run to run; the codec's
float64 coding parameters do not need them and the synthesis must stay within the conformance
tolerance (docs/bitstream.md). The settings are restored after each call, so a training run in
the same process keeps its own. On CPU this does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def deterministic(device: str | torch.device) -> Iterator[None]:
    if torch.device(device).type != "cuda":
        yield
        return
    b = torch.backends
    saved = (b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32, b.cudnn.deterministic, b.cudnn.benchmark)
    b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32, b.cudnn.deterministic, b.cudnn.benchmark = False, False, True, False
    try:
        yield
    finally:
        b.cuda.matmul.allow_tf32, b.cudnn.allow_tf32, b.cudnn.deterministic, b.cudnn.benchmark = saved
