"""Numerics per device: deterministic codec calls on CUDA, and where bf16 autocast pays.

Codec calls on CUDA run with TF32 off, deterministic cuDNN and no autotuning:
TF32 matmuls and autotuned cuDNN kernels change float round-off from run to run; the codec's
float64 coding parameters do not need them and the synthesis must stay within the conformance
tolerance (docs/bitstream.md). The settings are restored after each call, so a training run in
the same process keeps its own. On CPU ``deterministic`` does nothing.
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


def fast_bf16(device: str | torch.device) -> bool:
    """Whether bf16 autocast runs natively on ``device``: a CUDA device with bf16, or a CPU with
    AVX512-BF16 or AMX. Elsewhere it is emulated: on an AVX2-only EPYC a training step took 8.6x
    as long as in fp32 (docs/benchmarks.md), so training and ``--effort`` stay in fp32 there."""
    d = torch.device(device)
    if d.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if d.type != "cpu":
        return False
    cpu = torch.cpu  # private probes (torch >= 2.3); a torch without them gets fp32
    return any(getattr(cpu, probe, lambda: False)() for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
