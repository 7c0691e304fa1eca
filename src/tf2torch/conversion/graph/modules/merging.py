"""Ops that combine tensors: merge layers, concatenation, dot products, constants.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import nn

BINARY = {
    "add": operator.add,
    "subtract": operator.sub,
    "multiply": operator.mul,
    "divide": operator.truediv,
    "maximum": torch.maximum,
    "minimum": torch.minimum,
    "power": torch.pow,
}


class Merge(nn.Module):
    """Keras merge layers: one binary op folded over same-shaped inputs."""

    shape_rule = "broadcast"  # output shape known without running (see lower.py)


    def __init__(self, op: str) -> None:
        super().__init__()
        self.op = op

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        fn = BINARY["add" if self.op == "average" else self.op]
        y = xs[0]
        for x in xs[1:]:
            y = fn(y, x)
        return y / len(xs) if self.op == "average" else y


class Concat(nn.Module):
    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.axis)


class Dot(nn.Module):
    """Keras Dot on rank-2/3 inputs: batched contraction over one axis each, optional L2 norm."""

    def __init__(self, axes: tuple, normalize: bool) -> None:
        super().__init__()
        self.axes, self.normalize = axes, normalize

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            a = F.normalize(a, dim=self.axes[0], eps=1e-12)
            b = F.normalize(b, dim=self.axes[1], eps=1e-12)
        if a.dim() == 2:
            return (a * b).sum(dim=1, keepdim=True)
        a = a.movedim(self.axes[0], -1)
        b = b.movedim(self.axes[1], 1)
        return torch.matmul(a, b)


class ScalarOp(nn.Module):
    """`x op c` or `c op x` with a Python constant (Keras ops / TF-op layers on constants)."""

    shape_rule = "same"  # output shape known without running (see lower.py)


    def __init__(self, op: str, constant: float, constant_first: bool = False) -> None:
        super().__init__()
        self.op, self.constant, self.constant_first = op, constant, constant_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = torch.full((), self.constant, dtype=x.dtype, device=x.device)
        return BINARY[self.op](c, x) if self.constant_first else BINARY[self.op](x, c)


class ScaledSum(nn.Module):
    """inputs[0] + inputs[1]·scale (InceptionResNetV2's CustomScaleLayer)."""

    shape_rule = "broadcast"  # output shape known without running (see lower.py)


    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y * self.scale
