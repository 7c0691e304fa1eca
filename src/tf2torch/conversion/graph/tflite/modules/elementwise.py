"""TFLite's element-wise ops, softmax, L2 normalisation and reductions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tf2torch.conversion.graph.tflite.modules.layers import FUSED, fused, same_device

UNARY = {
    **FUSED,
    "logistic": torch.sigmoid,
    "hard_swish": F.hardswish,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "exp": torch.exp,
    "log": torch.log,
    "abs": torch.abs,
    "neg": torch.neg,
    "sqrt": torch.sqrt,
    "rsqrt": torch.rsqrt,
    "square": torch.square,
    "floor": torch.floor,
    "ceil": torch.ceil,
    "round": torch.round,  # TFLite rounds half to even, as torch does
    "sin": torch.sin,
    "cos": torch.cos,
    "elu": F.elu,
    "sign": torch.sign,
}


BINARY = {
    "add": torch.add,
    "sub": torch.sub,
    "mul": torch.mul,
    "div": torch.div,
    "maximum": torch.maximum,
    "minimum": torch.minimum,
    "pow": torch.pow,
    "squared_difference": lambda a, b: torch.square(a - b),
    "floor_div": lambda a, b: torch.floor(a / b),
    "prelu": lambda x, alpha: torch.where(x >= 0, x, x * alpha),
}


class Unary(nn.Module):
    def __init__(self, fn: str, alpha: float = 0.0) -> None:
        super().__init__()
        self.fn, self.alpha = fn, alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fn == "leaky_relu":
            return F.leaky_relu(x, self.alpha)
        return UNARY[self.fn](x)


class Binary(nn.Module):
    """An elementwise binary op; one operand may be a stored constant.

    The constant keeps its file shape; `const_view` (shape padded to the input's rank, then
    a permutation) puts it in the layout the module runs in.
    """

    def __init__(self, op: str, activation: str = "linear", const_shape: tuple | None = None,
                 const_first: bool = False, const_view: tuple | None = None) -> None:
        super().__init__()
        self.op, self.activation, self.const_first = op, activation, const_first
        self.const_view = const_view
        if const_shape is not None:
            self.register_buffer("constant", torch.empty(tuple(const_shape)))
        else:
            self.constant = None

    def _const(self) -> torch.Tensor:
        c = self.constant
        if self.const_view is not None:
            shape, perm = self.const_view
            c = c.reshape(shape).permute(perm)
        return c

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.constant is not None:
            xs = (self._const(), xs[0]) if self.const_first else (xs[0], self._const())
        a, b = same_device(xs)
        return fused(BINARY[self.op](a, b), self.activation)


class AddN(nn.Module):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y


class Softmax(nn.Module):
    def __init__(self, axis: int, beta: float = 1.0, log: bool = False) -> None:
        super().__init__()
        self.axis, self.beta, self.log = axis, beta, log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.beta != 1.0:
            x = x * self.beta
        return torch.log_softmax(x, self.axis) if self.log else torch.softmax(x, self.axis)


class L2Normalize(nn.Module):
    """x / max(‖x‖, 1e-6) along `axis` (TFLite's kernel epsilon)."""

    def __init__(self, axis: int, activation: str = "linear") -> None:
        super().__init__()
        self.axis, self.activation = axis, activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.sqrt(torch.sum(x * x, dim=self.axis, keepdim=True))
        return fused(x / torch.clamp(norm, min=1e-6), self.activation)


class Reduce(nn.Module):
    def __init__(self, kind: str, axes: tuple, keepdims: bool) -> None:
        super().__init__()
        self.kind, self.axes, self.keepdims = kind, tuple(axes), keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.axes:
            return x
        if self.kind == "mean":
            return x.mean(self.axes, keepdim=self.keepdims)
        if self.kind == "sum":
            return x.sum(self.axes, keepdim=self.keepdims)
        if self.kind == "max":
            return x.amax(self.axes, keepdim=self.keepdims)
        if self.kind == "min":
            return x.amin(self.axes, keepdim=self.keepdims)
        if self.kind in ("any", "all"):
            fn = torch.any if self.kind == "any" else torch.all
            for axis in sorted(self.axes, reverse=True):
                x = fn(x, dim=axis, keepdim=self.keepdims)
            return x
        y = x
        for axis in sorted(self.axes, reverse=True):
            y = y.prod(axis, keepdim=self.keepdims)
        return y
