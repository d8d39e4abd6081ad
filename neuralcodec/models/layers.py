"""compressai's GDN with a thread-count-independent inference path."""

from __future__ import annotations

import torch
from torch import Tensor

from .._compressai import GDN


class StableGDN(GDN):
    """GDN whose inference output does not depend on the number of CPU threads or the batch size.

    compressai computes GDN's normalization as a 1x1 convolution; on CPU its float32 result
    changes with the thread count, which would make the encoder's rounding of ``y`` (hence the
    bytes) and the decoder's pixels depend on the machine. At inference the same sum runs as one
    GEMM per image (``addmm``), which gives identical results for 1, 2 and 4 threads and is faster
    than the convolution. Training, and any pass that differentiates with respect to ``x``
    (encoder-side refinement), keeps compressai's path; the weights are the same.
    """

    def forward(self, x: Tensor) -> Tensor:
        if self.training or (x.requires_grad and torch.is_grad_enabled()):
            return super().forward(x)
        B, C, H, W = x.shape
        beta = self.beta_reparam(self.beta)[:, None]
        gamma = self.gamma_reparam(self.gamma).reshape(C, C)
        x2 = (x * x).reshape(B, C, H * W)
        norm = torch.empty_like(x2)
        for b in range(B):  # one GEMM per image: identical results whatever the batch size
            torch.addmm(beta, gamma, x2[b], out=norm[b])
        norm = norm.sqrt_() if self.inverse else norm.rsqrt_()
        return norm.view(B, C, H, W).mul_(x)


class StableLinear1x1(torch.nn.Conv2d):
    """1x1 convolution whose inference output does not depend on thread count or batch size
    (one GEMM per image, like :class:`StableGDN`); training uses the ordinary convolution."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            return super().forward(x)
        B, C, H, W = x.shape
        w = self.weight.reshape(self.out_channels, C)
        out = x.new_empty(B, self.out_channels, H * W)
        flat = x.reshape(B, C, H * W)
        for b in range(B):
            torch.addmm(self.bias[:, None], w, flat[b], out=out[b])
        return out.view(B, self.out_channels, H, W)
