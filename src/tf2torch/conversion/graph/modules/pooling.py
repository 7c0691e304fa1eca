"""Pooling with TF SAME semantics (-inf pads for max, real-cell counts for average).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tf2torch.conversion.graph.modules.conv import resolve_pads


class Pool(nn.Module):
    """Max/average pooling (1D/2D/3D, channels-first) with TF SAME semantics.

    SAME max pooling pads with -inf; SAME average pooling divides by the number of real
    (unpadded) cells, which torch's count_include_pad=False only does for symmetric pads.
    """

    def __init__(self, kind: str, pool_size: tuple, strides: tuple, padding: str) -> None:
        super().__init__()
        self.kind, self.pool_size, self.strides = kind, pool_size, strides
        self.same = padding == "same"
        self.rank = len(pool_size)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        fn = {
            ("max", 1): F.max_pool1d, ("max", 2): F.max_pool2d, ("max", 3): F.max_pool3d,
            ("avg", 1): F.avg_pool1d, ("avg", 2): F.avg_pool2d, ("avg", 3): F.avg_pool3d,
        }[(self.kind, self.rank)]
        return fn(x, self.pool_size, self.strides)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.same:
            return self._pool(x)
        pads = resolve_pads(x, None, self.pool_size, self.strides, (1,) * self.rank)
        if not any(pads):
            return self._pool(x)
        if self.kind == "max":
            return self._pool(F.pad(x, pads, value=-math.inf))
        ones = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=x.device)
        return self._pool(F.pad(x, pads)) / self._pool(F.pad(ones, pads))


class GlobalPool(nn.Module):
    """Global average/max over the spatial dims of a channels-first tensor."""

    def __init__(self, kind: str, keepdims: bool) -> None:
        super().__init__()
        self.kind, self.keepdims = kind, keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(2, x.dim()))
        if self.kind == "avg":
            return x.mean(dim=dims, keepdim=self.keepdims)
        return x.amax(dim=dims, keepdim=self.keepdims)
