"""PyTorch modules for TFLite op semantics the shared `graph.modules` does not cover.

Like `graph.modules`, constructor arguments are plain literals so a module rebuilds from its
recorded spec. Every op with a fused activation applies it through `fused`. Modules marked
"cf" receive channels-first tensors; axis arguments are already resolved for the layout the
module runs in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tf2torch.conversion.graph import modules as shared

FUSED = {
    "linear": lambda x: x,
    "relu": F.relu,
    "relu6": F.relu6,
    "relu_n1_to_1": lambda x: torch.clamp(x, -1.0, 1.0),
    "relu_0_to_1": lambda x: torch.clamp(x, 0.0, 1.0),
    "tanh": torch.tanh,
    "sign_bit": torch.sign,
}

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


def fused(x: torch.Tensor, activation: str) -> torch.Tensor:
    return FUSED[activation](x)


class Conv2d(shared.Conv):
    """CONV_2D / DEPTHWISE_CONV_2D (cf): the shared TF-padded conv plus a fused activation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple, stride: tuple,
                 dilation: tuple, groups: int, bias: bool, padding,
                 activation: str = "linear") -> None:
        super().__init__(2, in_channels, out_channels, kernel_size, stride, dilation, groups,
                         bias, padding)
        self.fused = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused(super().forward(x), self.fused)


class TransposeConv2d(nn.Module):
    """TRANSPOSE_CONV (cf): the full transposed conv, cropped to TFLite's output size.

    TFLite gives the output size explicitly; the crop starts at the SAME padding's `before`
    (VALID: 0) and a too-short result is zero-extended at the end.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple, stride: tuple,
                 bias: bool, padding: str, out_size: tuple, activation: str = "linear") -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride, bias=bias)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.out_size, self.activation = tuple(out_size), activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        for dim, out in enumerate(self.out_size, start=2):
            full = y.shape[dim]
            start = max(full - out, 0) // 2 if self.padding == "same" else 0
            length = min(out, full - start)
            y = y.narrow(dim, start, length)
            if length < out:
                pad = [0, 0] * (y.dim() - 1 - dim) + [0, out - length]
                y = F.pad(y, pad)
        return fused(y, self.activation)


class FullyConnected(nn.Linear):
    """FULLY_CONNECTED: input flattened to (-1, in_features); `keep_num_dims` keeps its rank."""

    def __init__(self, in_features: int, out_features: int, bias: bool, keep_num_dims: bool,
                 activation: str = "linear") -> None:
        super().__init__(in_features, out_features, bias)
        self.keep_num_dims, self.activation = keep_num_dims, activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = fused(super().forward(x.reshape(-1, self.in_features)), self.activation)
        if self.keep_num_dims:
            return y.reshape(*x.shape[:-1], self.out_features)
        return y


class Pool2d(shared.Pool):
    """MAX_POOL_2D / AVERAGE_POOL_2D (cf) with TF SAME semantics and a fused activation."""

    def __init__(self, kind: str, pool_size: tuple, strides: tuple, padding: str,
                 activation: str = "linear") -> None:
        super().__init__(kind, pool_size, strides, padding)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused(super().forward(x), self.activation)


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
        return fused(BINARY[self.op](xs[0], xs[1]), self.activation)


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


class Concat(nn.Module):
    def __init__(self, axis: int, activation: str = "linear") -> None:
        super().__init__()
        self.axis, self.activation = axis, activation

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return fused(torch.cat(xs, dim=self.axis), self.activation)


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
        y = x
        for axis in sorted(self.axes, reverse=True):
            y = y.prod(axis, keepdim=self.keepdims)
        return y


class Reshape(nn.Module):
    """Reshape to a TFLite shape whose first dimension is the batch (kept from the input)."""

    def __init__(self, shape: tuple, keep_batch: bool = True) -> None:
        super().__init__()
        self.shape, self.keep_batch = tuple(shape), keep_batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.keep_batch:
            return x.reshape(self.shape)
        if -1 in self.shape[1:]:
            return x.reshape(x.shape[0], *self.shape[1:])
        # The batch is whatever remains: an op before may have merged it into another axis.
        return x.reshape(-1, *self.shape[1:])


class Transpose(nn.Module):
    def __init__(self, perm: tuple) -> None:
        super().__init__()
        self.perm = tuple(perm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.perm)


class PadND(nn.Module):
    """PAD / PADV2 / MIRROR_PAD with an F.pad list (last dim first).

    Symmetric mirror padding (edge repeated) has no torch mode: built from flips."""

    def __init__(self, pads: list, mode: str = "constant", value: float = 0.0) -> None:
        super().__init__()
        self.pads, self.mode, self.value = list(pads), mode, value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "constant":
            return F.pad(x, self.pads, value=self.value)
        for i in range(len(self.pads) // 2):
            dim = x.dim() - 1 - i
            before, after = self.pads[2 * i], self.pads[2 * i + 1]
            x = _mirror(x, dim, before, after, self.mode == "symmetric")
        return x


def _mirror(x: torch.Tensor, dim: int, before: int, after: int, symmetric: bool) -> torch.Tensor:
    if not before and not after:
        return x
    skip = 0 if symmetric else 1
    n = x.shape[dim]
    parts = []
    if before:
        parts.append(x.narrow(dim, skip, before).flip(dim))
    parts.append(x)
    if after:
        parts.append(x.narrow(dim, n - after - skip, after).flip(dim))
    return torch.cat(parts, dim)


class Slice(nn.Module):
    """STRIDED_SLICE / SLICE as Python indexing: each item is [start, stop, step] (None =
    open), "new" (insert an axis) or an int (take and drop the axis)."""

    def __init__(self, items: list) -> None:
        super().__init__()
        self.items = [tuple(i) if isinstance(i, list) else i for i in items]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = tuple(None if i == "new" else i if isinstance(i, int) else slice(*i)
                      for i in self.items)
        return x[index]


class Split(nn.Module):
    def __init__(self, sizes: tuple, axis: int) -> None:
        super().__init__()
        self.sizes, self.axis = list(sizes), axis

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(torch.split(x, self.sizes, dim=self.axis))


class Stack(nn.Module):
    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.stack(xs, dim=self.axis)


class Unstack(nn.Module):
    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(torch.unbind(x, dim=self.axis))


class Gather(nn.Module):
    """GATHER with constant indices (negative indices count from the end, as in TFLite)."""

    def __init__(self, indices: list, axis: int) -> None:
        super().__init__()
        self.indices, self.axis = indices, axis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idx = torch.tensor(self.indices, dtype=torch.long, device=x.device)
        flat = torch.remainder(idx.reshape(-1), x.shape[self.axis])
        y = x.index_select(self.axis, flat)
        return y.reshape(*x.shape[:self.axis], *idx.shape, *x.shape[self.axis + 1:])


class Tile(nn.Module):
    def __init__(self, multiples: tuple) -> None:
        super().__init__()
        self.multiples = tuple(multiples)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.repeat(self.multiples)


class BatchMatMul(nn.Module):
    """BATCH_MATMUL; the right operand may be a stored constant."""

    def __init__(self, adj_x: bool, adj_y: bool, const_shape: tuple | None = None) -> None:
        super().__init__()
        self.adj_x, self.adj_y = adj_x, adj_y
        if const_shape is not None:
            self.register_buffer("constant", torch.empty(tuple(const_shape)))
        else:
            self.constant = None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = self.constant if y is None else y
        if self.adj_x:
            x = x.transpose(-1, -2)
        if self.adj_y:
            y = y.transpose(-1, -2)
        return torch.matmul(x, y)


class DepthToSpace(nn.Module):
    """DEPTH_TO_SPACE / SPACE_TO_DEPTH in NHWC (TF's channel order differs from pixel_shuffle)."""

    def __init__(self, block: int, inverse: bool = False) -> None:
        super().__init__()
        self.block, self.inverse = block, inverse

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w, c = x.shape
        b = self.block
        if self.inverse:
            y = x.reshape(n, h // b, b, w // b, b, c).permute(0, 1, 3, 2, 4, 5)
            return y.reshape(n, h // b, w // b, c * b * b)
        y = x.reshape(n, h, w, b, b, c // (b * b)).permute(0, 1, 3, 2, 4, 5)
        return y.reshape(n, h * b, w * b, c // (b * b))


class SpaceToBatch(nn.Module):
    """SPACE_TO_BATCH_ND (NHWC): pad H, W, then move block offsets into the batch."""

    def __init__(self, block: tuple, pads: tuple) -> None:
        super().__init__()
        self.block, self.pads = tuple(block), tuple(pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (bh, bw), ((t, b), (left, r)) = self.block, self.pads
        x = F.pad(x, [0, 0, left, r, t, b])
        n, h, w, c = x.shape
        y = x.reshape(n, h // bh, bh, w // bw, bw, c).permute(2, 4, 0, 1, 3, 5)
        return y.reshape(bh * bw * n, h // bh, w // bw, c)


class BatchToSpace(nn.Module):
    """BATCH_TO_SPACE_ND (NHWC): the inverse of SpaceToBatch, then crop H, W."""

    def __init__(self, block: tuple, crops: tuple) -> None:
        super().__init__()
        self.block, self.crops = tuple(block), tuple(crops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (bh, bw), ((t, b), (left, r)) = self.block, self.crops
        nb, h, w, c = x.shape
        n = nb // (bh * bw)
        y = x.reshape(bh, bw, n, h, w, c).permute(2, 3, 0, 4, 1, 5)
        y = y.reshape(n, h * bh, w * bw, c)
        return y[:, t:h * bh - b, left:w * bw - r]


class Resize(nn.Module):
    """RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR (cf) with TFLite's three coordinate modes.

    Source coordinates per output index, as TFLite's kernels compute them:
    align_corners: d·(in-1)/(out-1); half_pixel_centers: (d+0.5)·in/out - 0.5 (nearest: no
    -0.5, floor); neither: d·in/out. Bilinear interpolates separably along H then W.
    """

    def __init__(self, mode: str, size: tuple, align_corners: bool,
                 half_pixel_centers: bool) -> None:
        super().__init__()
        self.mode, self.size = mode, tuple(size)
        self.align_corners, self.half_pixel = align_corners, half_pixel_centers

    def _scale(self, n_in: int, n_out: int) -> float:
        if self.align_corners and n_out > 1:
            return (n_in - 1) / (n_out - 1)
        return n_in / n_out

    def _coords(self, n_in: int, n_out: int, device) -> torch.Tensor:
        d = torch.arange(n_out, dtype=torch.float32, device=device)
        scale = self._scale(n_in, n_out)
        if self.mode == "nearest":
            offset = 0.5 if self.half_pixel else 0.0
            src = (d + offset) * scale
            # std::round (half away from zero) on non-negative values
            src = torch.floor(src + 0.5) if self.align_corners else torch.floor(src)
            return torch.clamp(src, 0, n_in - 1).long()
        if self.half_pixel:
            return (d + 0.5) * scale - 0.5
        return d * scale

    def _along(self, x: torch.Tensor, dim: int, n_out: int) -> torch.Tensor:
        n_in = x.shape[dim]
        coords = self._coords(n_in, n_out, x.device)
        if self.mode == "nearest":
            return x.index_select(dim, coords)
        low_f = torch.floor(coords)
        frac = coords - low_f
        low = torch.clamp(low_f, 0, n_in - 1).long()
        high = torch.clamp(low_f + 1, 0, n_in - 1).long()
        shape = [1] * x.dim()
        shape[dim] = n_out
        frac = frac.reshape(shape).to(x.dtype)
        a, b = x.index_select(dim, low), x.index_select(dim, high)
        return a + (b - a) * frac

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dim, n_out in zip((2, 3), self.size, strict=True):
            if x.shape[dim] != n_out or self.mode != "nearest":
                x = self._along(x, dim, n_out)
        return x


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

