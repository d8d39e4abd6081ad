"""compressai's GDN with a thread-count-independent inference path."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from compressai.layers import GDN
from torch import Tensor


class StableGDN(GDN):
    """GDN whose inference output does not depend on the number of CPU threads.

    The 1x1 convolution inside GDN runs as a GEMM whose summation order changes with the thread
    count, so float32 results move by an ulp and the encoder's rounding of ``y`` (hence the bytes)
    and the decoder's pixels would depend on the machine's threads. In eval mode the normalization
    is computed in float64 and rounded back to float32, which removes that dependence (short of a
    ~1e-9 chance per value). Training uses compressai's float32 path unchanged; weights are the same.
    """

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            return super().forward(x)
        C = x.shape[1]
        beta = self.beta_reparam(self.beta).double()
        gamma = self.gamma_reparam(self.gamma).reshape(C, C, 1, 1).double()
        norm = F.conv2d(x.double() ** 2, gamma, beta).float()
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))
