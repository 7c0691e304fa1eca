"""TensorFlow's element-wise ops: activations and math by name, binary ops with an optional
stored constant or literal scalar, comparisons, casts, select, clipping and bias adds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _selu(x: torch.Tensor) -> torch.Tensor:
    return F.selu(x)


UNARY = {
    "relu": F.relu,
    "relu6": F.relu6,
    "elu": F.elu,
    "selu": _selu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "erf": torch.erf,
    "erfc": torch.erfc,
    "exp": torch.exp,
    "expm1": torch.expm1,
    "log": torch.log,
    "log1p": torch.log1p,
    "neg": torch.neg,
    "abs": torch.abs,
    "sqrt": torch.sqrt,
    "rsqrt": torch.rsqrt,
    "square": torch.square,
    "reciprocal": torch.reciprocal,
    "floor": torch.floor,
    "ceil": torch.ceil,
    "round": torch.round,  # half to even, as TF's Round
    "sign": torch.sign,
    "sin": torch.sin,
    "cos": torch.cos,
    "tan": torch.tan,
    "atan": torch.atan,
    "logical_not": torch.logical_not,
    "is_nan": torch.isnan,
    "is_inf": torch.isinf,
    "is_finite": torch.isfinite,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "silu": F.silu,
    "zeros_like": torch.zeros_like,
    "ones_like": torch.ones_like,
}


class Unary(nn.Module):
    """An element-wise op by name; `alpha` for LeakyRelu."""

    shape_rule = "same"  # output shape known without running (see lower.py)

    def __init__(self, fn: str, alpha: float = 0.0) -> None:
        super().__init__()
        self.fn, self.alpha = fn, alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fn == "leaky_relu":
            return F.leaky_relu(x, self.alpha)
        return UNARY[self.fn](x)


def _floor_mod(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.remainder(a, b)


def _div_no_nan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(b == 0, torch.zeros_like(a * b), a / torch.where(b == 0, 1, b))


BINARY = {
    "add": torch.add,
    "sub": torch.sub,
    "mul": torch.mul,
    "div": torch.div,
    "floor_div": lambda a, b: torch.div(a, b, rounding_mode="floor"),
    "trunc_div": lambda a, b: torch.div(a, b, rounding_mode="trunc"),
    "floor_mod": _floor_mod,
    "div_no_nan": _div_no_nan,
    "maximum": torch.maximum,
    "minimum": torch.minimum,
    "pow": torch.pow,
    "squared_difference": lambda a, b: torch.square(a - b),
    "equal": torch.eq,
    "not_equal": torch.ne,
    "less": torch.lt,
    "less_equal": torch.le,
    "greater": torch.gt,
    "greater_equal": torch.ge,
    "logical_and": torch.logical_and,
    "logical_or": torch.logical_or,
}


COMPARISONS = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
               "logical_and", "logical_or"}


class Binary(nn.Module):
    """`a op b` where one operand may be a stored constant (buffer `constant`, kept in its
    file shape; `const_view` = shape padded to the input's rank, then a permutation, puts it
    in the layout the module runs in) or a literal scalar."""

    def __init__(self, op: str, const_shape: tuple | None = None, const_first: bool = False,
                 const_view: tuple | None = None, scalar: float | None = None,
                 same_shape: bool = False) -> None:
        super().__init__()
        self.op, self.const_first, self.const_view, self.scalar = op, const_first, const_view, scalar
        if op not in COMPARISONS:  # the output's shape is known without running (lower.py)
            two_inputs = const_shape is None and scalar is None
            self.shape_rule = "broadcast" if two_inputs else "same" if same_shape else None
        if const_shape is not None:
            self.register_buffer("constant", torch.empty(tuple(const_shape)))
        else:
            self.constant = None

    def _other(self, x: torch.Tensor) -> torch.Tensor:
        if self.constant is None:
            return torch.tensor(self.scalar, dtype=x.dtype, device=x.device)
        c = self.constant.to(x.dtype)
        if self.const_view is not None:
            shape, perm = self.const_view
            c = c.reshape(shape).permute(perm)
        return c

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            other = self._other(x)
            x, y = (other, x) if self.const_first else (x, other)
        return BINARY[self.op](x, y)


class AddN(nn.Module):
    shape_rule = "broadcast"  # output shape known without running (see lower.py)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y


class BiasAdd(nn.Module):
    """x + bias along `axis` (the channel axis in the layout the module runs in)."""

    shape_rule = "same"  # output shape known without running (see lower.py)

    def __init__(self, channels: int, axis: int) -> None:
        super().__init__()
        self.axis = axis
        self.bias = nn.Parameter(torch.empty(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.axis in (-1, x.dim() - 1):
            return x + self.bias
        shape = [1] * x.dim()
        shape[self.axis] = -1
        return x + self.bias.view(shape)


_DTYPES = {"float32": torch.float32, "float16": torch.float32, "float64": torch.float32,
           "bfloat16": torch.float32, "int32": torch.int32, "int64": torch.int64,
           "bool": torch.bool, "int8": torch.int8, "uint8": torch.uint8,
           "int16": torch.int16}


class Cast(nn.Module):
    """Cast to a TF dtype; floats of every width compute as float32."""

    def __init__(self, dtype: str) -> None:
        super().__init__()
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        target = _DTYPES[self.dtype]
        if not target.is_floating_point and x.is_floating_point():
            x = torch.trunc(x)  # TF truncates float → int, as C++ does
        return x.to(target)


class Select(nn.Module):
    """`where(cond, a, b)`; constants among a/b are literal scalars. TF1's `Select` with a
    vector condition picks whole rows of a higher-rank a/b."""

    def __init__(self, scalars: tuple = (None, None), rows: bool = False) -> None:
        super().__init__()
        self.scalars, self.rows = tuple(scalars), rows

    def forward(self, cond: torch.Tensor, *xs: torch.Tensor) -> torch.Tensor:
        it = iter(xs)
        a, b = (next(it) if s is None else s for s in self.scalars)
        ref = next((t for t in (a, b) if isinstance(t, torch.Tensor)), cond)
        a, b = (t if isinstance(t, torch.Tensor) else torch.tensor(
            t, dtype=ref.dtype if ref.is_floating_point() else torch.float32,
            device=ref.device) for t in (a, b))
        if self.rows and cond.dim() == 1:
            cond = cond.reshape(-1, *([1] * (ref.dim() - 1)))
        return torch.where(cond.to(torch.bool), a, b)


class Clip(nn.Module):
    """ClipByValue with literal bounds."""

    shape_rule = "same"  # output shape known without running (see lower.py)

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = low, high

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, self.low, self.high)
