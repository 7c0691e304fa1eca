"""TFLite's value ops: comparisons, logic, selection, shapes computed at run time, integer
arithmetic on them, fills, ranges, broadcasts, computed reshapes and slices, FFTs
(indexing ops are in `indexing.py`).

Shapes live on the CPU (as TensorFlow keeps them in host memory): SHAPE gives a CPU int
tensor, so the ops that read sizes from one (`tolist()`) work whatever device the data is
on, and a batch of any size flows through. Constant operands a file stores are `literals`
([position, value, dtype], inserted among the computed operands) or, for float arrays, the
buffers `constant_<position>`.
"""

from __future__ import annotations

import torch
from torch import nn

DTYPES = {"float32": torch.float32, "float16": torch.float16, "float64": torch.float64,
          "int32": torch.int32, "int64": torch.int64, "int16": torch.int16,
          "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool,
          "complex64": torch.complex64}


def _floor_div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.div(a, b, rounding_mode="floor")


def _div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """TFLite DIV: true division on floats, truncation on integers."""
    if a.is_floating_point() or b.is_floating_point():
        return a / b
    return torch.div(a, b, rounding_mode="trunc")


# Elementwise functions by name (operands in the op's order).
FUNCTIONS = {
    "equal": torch.eq, "not_equal": torch.ne, "less": torch.lt, "less_equal": torch.le,
    "greater": torch.gt, "greater_equal": torch.ge,
    "logical_and": torch.logical_and, "logical_or": torch.logical_or,
    "logical_not": torch.logical_not, "select": torch.where,
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": _div,
    "floor_div": _floor_div, "floor_mod": torch.remainder,
    "maximum": torch.maximum, "minimum": torch.minimum, "pow": torch.pow,
    "squared_difference": lambda a, b: torch.square(a - b),
    "neg": torch.neg, "abs": torch.abs, "cast": None,
    "complex_abs": torch.abs, "real": torch.real, "imag": torch.imag,
    "zeros_like": torch.zeros_like, "atan2": torch.atan2,
    "broadcast_args": lambda a, b: torch.tensor(
        torch.broadcast_shapes(tuple(ints_of(a)), tuple(ints_of(b))), dtype=a.dtype),
    "matrix_diag": torch.diag_embed,
    "matrix_set_diag": lambda x, d: x * (1 - _eye_like(x)) + _diag_like(x, d),
}


def _eye_like(x: torch.Tensor) -> torch.Tensor:
    rows, cols = x.shape[-2:]
    return torch.eye(rows, cols, dtype=x.dtype, device=x.device)


def _diag_like(x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """A matrix of x's shape with `d` on its main diagonal (rectangular too)."""
    rows, cols = x.shape[-2:]
    square = torch.diag_embed(d.to(x.dtype))
    return torch.nn.functional.pad(square, [0, cols - square.shape[-1], 0,
                                            rows - square.shape[-2]])


class Operands(nn.Module):
    """Base of modules with constant operands: puts them back among the computed ones.

    Literals are made on the CPU (sizes, axes, indices are read there), or on `like`'s
    device for modules that combine them with data elementwise."""

    def __init__(self, literals: list | None = None, constants: list | None = None) -> None:
        super().__init__()
        self.literals = [tuple(x) for x in literals or []]
        self.constant_shapes = {}
        for pos, shape in constants or []:
            # a scalar is stored with one axis (weight files want one), viewed back as ()
            self.register_buffer(f"constant_{pos}", torch.empty(tuple(shape) or (1,)))
            self.constant_shapes[pos] = tuple(shape)

    def operands(self, xs: tuple, like: torch.Tensor | None = None) -> list[torch.Tensor]:
        device = like.device if like is not None else "cpu"
        found = {pos: getattr(self, f"constant_{pos}").reshape(shape)
                 for pos, shape in self.constant_shapes.items()}
        for pos, value, dtype in self.literals:
            found[pos] = torch.tensor(value, dtype=DTYPES[dtype], device=device)
        args, rest = [], list(xs)
        for pos in range(len(xs) + len(found)):
            args.append(found[pos] if pos in found else rest.pop(0))
        return args


class Apply(Operands):
    """An elementwise op from `FUNCTIONS` (`cast`: to `dtype`), with constant operands."""

    def __init__(self, fn: str, literals: list | None = None, constants: list | None = None,
                 dtype: str | None = None) -> None:
        super().__init__(literals, constants)
        self.fn, self.dtype = fn, dtype

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        args = _together(self.operands(xs, like=_data(xs, self)))
        if self.fn == "cast":
            return args[0].to(DTYPES[self.dtype])
        y = FUNCTIONS[self.fn](*args)
        return y if self.dtype is None else y.to(DTYPES[self.dtype])


class Join(Operands):
    """PACK / CONCATENATION with constant operands (shape arithmetic), in `dtype`."""

    def __init__(self, kind: str, axis: int, dtype: str, literals: list | None = None,
                 constants: list | None = None) -> None:
        super().__init__(literals, constants)
        self.kind, self.axis, self.dtype = kind, axis, dtype

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        args = [a.to(DTYPES[self.dtype])
                for a in _together(self.operands(xs, like=_data(xs, self)))]
        return torch.stack(args, self.axis) if self.kind == "stack" else torch.cat(args, self.axis)


class Rfft2d(nn.Module):
    """RFFT2D over the last two axes, cropped or zero-padded to `fft_length`."""

    def __init__(self, fft_length: tuple) -> None:
        super().__init__()
        self.fft_length = tuple(fft_length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft2(x, s=self.fft_length, dim=(-2, -1))


class ShapeOf(nn.Module):
    """SHAPE: the input's shape as a CPU integer tensor."""

    def __init__(self, dtype: str = "int32") -> None:
        super().__init__()
        self.dtype = dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor(list(x.shape), dtype=DTYPES[self.dtype])


def _data(xs: tuple, module: nn.Module) -> torch.Tensor | None:
    """The tensor whose device results of this module belong on: a computed input, else
    a stored constant, else none (CPU)."""
    if xs:
        return xs[0]
    return next(iter(module.buffers()), None)


def _together(args: list[torch.Tensor]) -> list[torch.Tensor]:
    """Operands on one device: data's, where a shape-derived (CPU) tensor meets data."""
    device = next((a.device for a in args if a.device.type != "cpu"), None)
    return args if device is None else [a.to(device) for a in args]


def ints_of(t: torch.Tensor) -> list[int]:
    return [int(v) for v in t.reshape(-1).tolist()]


class Fill(Operands):
    """FILL: a tensor of the given dims (computed or constant) holding one value."""

    def __init__(self, dtype: str, literals: list | None = None,
                 constants: list | None = None) -> None:
        super().__init__(literals, constants)
        self.dtype = dtype
        # the device the filled tensor belongs on (it moves with the module)
        self.register_buffer("anchor", torch.empty(0), persistent=False)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        dims, value = self.operands(xs)
        dtype = DTYPES[self.dtype]
        device = self.anchor.device
        return torch.zeros(ints_of(dims), dtype=dtype, device=device) + value.to(device, dtype)


class Range(Operands):
    """RANGE(start, limit, delta), any of them computed."""

    def __init__(self, dtype: str, literals: list | None = None,
                 constants: list | None = None) -> None:
        super().__init__(literals, constants)
        self.dtype = dtype

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        start, limit, delta = (t.reshape(()).item() for t in self.operands(xs))
        return torch.arange(start, limit, delta, dtype=DTYPES[self.dtype])


class BroadcastTo(Operands):
    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        x, shape = self.operands(xs)
        return x.broadcast_to(ints_of(shape))


class DynamicReshape(nn.Module):
    """RESHAPE to a shape computed at run time (it names the real batch)."""

    def forward(self, x: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        return x.reshape(ints_of(shape))


class DynamicSlice(Operands):
    """STRIDED_SLICE / SLICE with computed begin, end (or size) and strides; `masks` are
    STRIDED_SLICE's (begin, end, ellipsis, new_axis, shrink) bit masks; SLICE has none."""

    def __init__(self, masks: tuple | None = None, sizes: bool = False,
                 literals: list | None = None) -> None:
        super().__init__(literals)
        self.masks, self.sizes = masks, sizes

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        args = self.operands(xs)
        x, begin = args[0], ints_of(args[1])
        if self.sizes:  # SLICE(x, begin, size)
            index = tuple(slice(b, None if n == -1 else b + n) for b, n in
                          zip(begin, ints_of(args[2]), strict=True))
            return x[index]
        end, strides = ints_of(args[2]), ints_of(args[3])
        begin_mask, end_mask, ellipsis, new_axis, shrink = self.masks
        items: list = []
        for i, (b, e, s) in enumerate(zip(begin, end, strides, strict=True)):
            bit = 1 << i
            if ellipsis & bit:
                items.append(Ellipsis)
            elif new_axis & bit:
                items.append(None)
            elif shrink & bit:
                items.append(b)
            else:
                items.append(slice(None if begin_mask & bit else b,
                                   None if end_mask & bit else e, s))
        return python_index(x, items)


def python_index(x: torch.Tensor, items: list) -> torch.Tensor:
    """x[items] with Python's semantics, negative steps included (torch has none)."""
    real = sum(1 for i in items if i is not None and i is not Ellipsis)
    full: list = []
    for item in items:
        full += [slice(None)] * (x.dim() - real) if item is Ellipsis else [item]
    if all(not isinstance(i, slice) or (i.step or 1) > 0 for i in full):
        return x[tuple(full)]
    dim = 0
    for item in full:
        if item is None:
            x = x.unsqueeze(dim)
        elif isinstance(item, int):
            x = x.select(dim, item)
            continue
        else:
            positions = torch.arange(*item.indices(x.shape[dim]), device=x.device)
            x = x.index_select(dim, positions)
        dim += 1
    return x
