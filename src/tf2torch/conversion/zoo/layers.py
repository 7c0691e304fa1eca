"""Building blocks shared by hand-written architectures: TensorFlow's SAME padding."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF SAME padding along one axis: (before, after), the extra cell going after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def conv_out_size(size: int, stride: int) -> int:
    """Spatial size after a SAME conv."""
    return math.ceil(size / stride)


class SamePad2d(nn.Module):
    """Zero padding that reproduces TF's SAME for a following unpadded conv.

    Pads are resolved once for `built_for` (the layer's input H, W when the network is
    built for a known size); other sizes take the dynamic path, computing TF's pads from the
    actual shape so results stay equal to TensorFlow's at any input size.
    """

    def __init__(self, kernel: int, stride: int, dilation: int = 1,
                 built_for: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.kernel, self.stride, self.dilation = kernel, stride, dilation
        self.built_for = built_for
        self.static_pads = self._pads(*built_for) if built_for else None

    def _pads(self, height: int, width: int) -> tuple[int, int, int, int]:
        top, bottom = same_pads(height, self.kernel, self.stride, self.dilation)
        left, right = same_pads(width, self.kernel, self.stride, self.dilation)
        return left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = (x.shape[-2], x.shape[-1])
        pads = self.static_pads if size == self.built_for else self._pads(*size)
        return F.pad(x, pads) if any(pads) else x

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}, built_for={self.built_for}, " \
               f"static_pads={self.static_pads}"
