"""PyTorch modules that reproduce TensorFlow/Keras op semantics.

This file imports only torch and the standard library: `codegen.emit_code` copies it verbatim
into standalone model files. Every class takes plain-literal constructor arguments so a module
can be rebuilt from its recorded `ModuleSpec` (see `lower.py`) without the source file.
Layouts: "cf" modules receive channels-first tensors (N, C, *spatial); the others receive the
source's channels-last layout, with axes given already resolved for the layout they run in.
"""

from __future__ import annotations

import math
import operator

import torch
import torch.nn.functional as F
from torch import nn


def _hard_sigmoid_keras2(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


def _exponential(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(x)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


# Elementwise activations by their canonical name (softmax/log_softmax need an axis: see Act).
ELEMENTWISE = {
    "linear": _identity,
    "relu": F.relu,
    "relu6": F.relu6,
    "sigmoid": torch.sigmoid,
    "hard_sigmoid": F.hardsigmoid,  # Keras 3: relu6(x + 3) / 6
    "hard_sigmoid_keras2": _hard_sigmoid_keras2,  # Keras 2: clip(0.2 x + 0.5, 0, 1)
    "hard_swish": F.hardswish,
    "tanh": torch.tanh,
    "silu": F.silu,
    "gelu": F.gelu,
    "gelu_tanh": _gelu_tanh,
    "elu": F.elu,
    "selu": F.selu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "exponential": _exponential,
    "mish": F.mish,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
}


BINARY = {
    "add": operator.add,
    "subtract": operator.sub,
    "multiply": operator.mul,
    "divide": operator.truediv,
    "maximum": torch.maximum,
    "minimum": torch.minimum,
    "power": torch.pow,
}


def activate(x: torch.Tensor, name: str, axis: int = -1) -> torch.Tensor:
    """Apply an activation by canonical name; `axis` is used by softmax/log_softmax only."""
    if name == "softmax":
        return torch.softmax(x, dim=axis)
    if name == "log_softmax":
        return torch.log_softmax(x, dim=axis)
    return ELEMENTWISE[name](x)


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TF SAME padding (before, after) for one spatial dimension."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _pad_arg(pads: list[tuple[int, int]]) -> list[int]:
    """Per-dimension (before, after) pairs in spatial order → F.pad's last-dim-first list."""
    flat: list[int] = []
    for before, after in reversed(pads):
        flat += [before, after]
    return flat


def resolve_pads(
    x: torch.Tensor, pads: list | None, kernel: tuple, stride: tuple, dilation: tuple,
) -> list[int]:
    """The F.pad argument: the static pads if known, else SAME pads from x's spatial size."""
    if pads is None:
        spatial = x.shape[2:]
        pads = [same_pads(int(s), k, st, d)
                for s, k, st, d in zip(spatial, kernel, stride, dilation, strict=True)]
    return _pad_arg(pads)


class Conv(nn.Module):
    """Conv1D/2D/Depthwise in channels-first layout with TF padding and a fused activation.

    `padding` is "valid", "same" (resolved at run time from the input size), "causal", or a
    list of static (before, after) pairs; symmetric static pads go to the conv itself.
    """

    def __init__(
        self, rank: int, in_channels: int, out_channels: int, kernel_size: tuple,
        stride: tuple, dilation: tuple, groups: int, bias: bool, padding,
        activation: str = "linear",
    ) -> None:
        super().__init__()
        conv_cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[rank]
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.pads = None
        self.pad_first: list[int] = []
        inner = 0
        if padding == "causal":
            self.pad_first = [(kernel_size[0] - 1) * dilation[0], 0]
        elif isinstance(padding, list | tuple):
            if all(b == a for b, a in padding):
                inner = tuple(b for b, _ in padding)
            else:
                self.pad_first = _pad_arg([tuple(p) for p in padding])
        elif padding == "same":
            self.pads = "dynamic"
        self.conv = conv_cls(in_channels, out_channels, kernel_size, stride, inner, dilation,
                             groups, bias)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pads == "dynamic":
            x = F.pad(x, resolve_pads(x, None, self.kernel_size, self.stride, self.dilation))
        elif self.pad_first:
            x = F.pad(x, self.pad_first)
        return activate(self.conv(x), self.activation, 1)


class SeparableConv(nn.Module):
    """SeparableConv1D/2D: depthwise conv (TF padding) then a 1×1 pointwise conv."""

    def __init__(
        self, rank: int, in_channels: int, depth_multiplier: int, out_channels: int,
        kernel_size: tuple, stride: tuple, dilation: tuple, bias: bool, padding,
        activation: str = "linear",
    ) -> None:
        super().__init__()
        mid = in_channels * depth_multiplier
        self.depthwise = Conv(rank, in_channels, mid, kernel_size, stride, dilation,
                              in_channels, False, padding)
        ones = (1,) * rank
        self.pointwise = Conv(rank, mid, out_channels, ones, ones, ones, 1, bias, "valid",
                              activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class ConvTranspose(nn.Module):
    """Conv1DTranspose/Conv2DTranspose with TF output sizes.

    TF's transpose conv is the gradient of a SAME/VALID conv: the full output is computed,
    then cropped (or zero-extended) to `in·stride` for SAME, cropping `total // 2` first.
    """

    def __init__(
        self, rank: int, in_channels: int, out_channels: int, kernel_size: tuple,
        stride: tuple, dilation: tuple, bias: bool, padding: str, activation: str = "linear",
    ) -> None:
        super().__init__()
        conv_cls = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[rank]
        self.conv = conv_cls(in_channels, out_channels, kernel_size, stride, 0, 0, 1, bias,
                             dilation)
        self.kernel_size, self.stride, self.dilation = kernel_size, stride, dilation
        self.same = padding == "same"
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sizes = x.shape[2:]
        y = self.conv(x)
        if self.same:
            for dim, (size, k, s, d) in enumerate(
                zip(sizes, self.kernel_size, self.stride, self.dilation, strict=True)
            ):
                full = (size - 1) * s + (k - 1) * d + 1
                start = max(full - size * s, 0) // 2
                y = y.narrow(dim + 2, start, min(full - start, size * s))
                if full < size * s:  # kernel smaller than stride: the tail holds only bias
                    pad = [0, 0] * (len(sizes) - 1 - dim) + [0, size * s - full]
                    bias = 0.0 if self.conv.bias is None else self.conv.bias.view(
                        -1, *([1] * len(sizes)))
                    y = F.pad(y - bias, pad) + bias
        return activate(y, self.activation, 1)


class Linear(nn.Linear):
    """Dense on the last axis of any rank, with a fused activation."""

    def __init__(self, in_features: int, out_features: int, bias: bool,
                 activation: str = "linear") -> None:
        super().__init__(in_features, out_features, bias)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return activate(super().forward(x), self.activation, -1)


class BatchNorm(nn.Module):
    """Inference batch norm over one axis of any rank (Keras formula, epsilon from config)."""

    shape_rule = "same"  # output shape known without running (see lower.py)


    def __init__(self, channels: int, axis: int, eps: float, scale: bool, center: bool) -> None:
        super().__init__()
        self.axis, self.eps = axis, eps
        self.weight = nn.Parameter(torch.empty(channels)) if scale else None
        self.bias = nn.Parameter(torch.empty(channels)) if center else None
        self.register_buffer("running_mean", torch.empty(channels))
        self.register_buffer("running_var", torch.empty(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.axis == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                False, 0.0, self.eps)
        shape = [1] * x.dim()
        shape[self.axis] = -1
        y = (x - self.running_mean.view(shape)) * torch.rsqrt(self.running_var.view(shape) + self.eps)
        if self.weight is not None:
            y = y * self.weight.view(shape)
        if self.bias is not None:
            y = y + self.bias.view(shape)
        return y


class LayerNorm(nn.Module):
    """Keras LayerNormalization over `axes` (resolved, ascending); params shaped like Keras."""

    shape_rule = "same"  # output shape known without running (see lower.py)


    def __init__(self, param_shape: tuple, axes: tuple, eps: float, scale: bool, center: bool,
                 rms_scaling: bool = False) -> None:
        super().__init__()
        self.axes, self.eps, self.rms = tuple(axes), eps, rms_scaling
        self.weight = nn.Parameter(torch.empty(param_shape)) if scale else None
        self.bias = nn.Parameter(torch.empty(param_shape)) if center else None

    def _view(self, p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        shape = [1] * x.dim()
        for axis, size in zip(self.axes, p.shape, strict=True):
            shape[axis] = size
        return p.reshape(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        trailing = self.axes == tuple(range(x.dim() - len(self.axes), x.dim()))
        if trailing and not self.rms:
            return F.layer_norm(x, x.shape[-len(self.axes):], self.weight, self.bias, self.eps)
        if self.rms:
            # Keras's (deprecated) rms_scaling divides by the root of the variance.
            var = torch.var(x, self.axes, correction=0, keepdim=True)
            y = x * torch.rsqrt(var + self.eps)
        else:
            var, mean = torch.var_mean(x, self.axes, correction=0, keepdim=True)
            y = (x - mean) * torch.rsqrt(var + self.eps)
        if self.weight is not None:
            y = y * self._view(self.weight, x)
        if self.bias is not None:
            y = y + self._view(self.bias, x)
        return y


class Act(nn.Module):
    """An activation by name; `axis` for softmax variants."""

    shape_rule = "same"  # output shape known without running (see lower.py)


    def __init__(self, name: str, axis: int = -1) -> None:
        super().__init__()
        self.name, self.axis = name, axis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return activate(x, self.name, self.axis)


class KerasReLU(nn.Module):
    """Keras ReLU(max_value, negative_slope, threshold)."""

    shape_rule = "same"  # output shape known without running (see lower.py)


    def __init__(self, max_value: float | None, negative_slope: float, threshold: float) -> None:
        super().__init__()
        self.max_value, self.negative_slope, self.threshold = max_value, negative_slope, threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.threshold == 0 and self.negative_slope == 0:
            y = F.relu(x)
        else:
            below = self.negative_slope * (x - self.threshold)
            y = torch.where(x >= self.threshold, x, below)
        if self.max_value is not None:
            y = torch.clamp(y, max=self.max_value)
        return y


class LeakyReLU(nn.Module):
    shape_rule = "same"  # output shape known without running (see lower.py)

    def __init__(self, negative_slope: float) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.negative_slope)


class ELU(nn.Module):
    shape_rule = "same"  # output shape known without running (see lower.py)

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(x, self.alpha)


class PReLU(nn.Module):
    """Keras PReLU: `alpha` has the input's shape without batch (shared axes of size 1)."""

    shape_rule = "same"  # output shape known without running (see lower.py)


    def __init__(self, alpha_shape: tuple) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.empty(alpha_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x >= 0, x, self.alpha * x)


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


class Affine(nn.Module):
    """x·scale + offset with scalars, or per-channel vectors broadcast over `shape`."""

    shape_rule = "same"  # output shape known without running (see lower.py)


    def __init__(self, scale, offset, shape: tuple | None = None) -> None:
        super().__init__()
        self.scale, self.offset, self.shape = scale, offset, shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shape is None:
            return x * self.scale + self.offset
        scale = torch.tensor(self.scale, dtype=x.dtype, device=x.device).reshape(self.shape)
        offset = torch.tensor(self.offset, dtype=x.dtype, device=x.device).reshape(self.shape)
        return x * scale + offset


class Standardize(nn.Module):
    """Keras Normalization: (x - mean) / max(sqrt(var), eps), or its inverse."""

    shape_rule = "same"  # output shape known without running (see lower.py)


    def __init__(self, shape: tuple, invert: bool, eps: float = 1e-7) -> None:
        super().__init__()
        self.shape, self.invert, self.eps = tuple(shape), invert, eps
        size = math.prod(shape)
        self.register_buffer("mean", torch.empty(size))
        self.register_buffer("variance", torch.empty(size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, var = self.mean.reshape(self.shape), self.variance.reshape(self.shape)
        std = torch.clamp(torch.sqrt(var), min=self.eps)
        if self.invert:
            return x * std + mean
        return (x - mean) / std


class ChannelScale(nn.Module):
    """Multiply by a learned vector along one axis (ConvNeXt LayerScale)."""

    shape_rule = "same"  # output shape known without running (see lower.py)


    def __init__(self, channels: int, axis: int) -> None:
        super().__init__()
        self.axis = axis
        self.gamma = nn.Parameter(torch.empty(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = [1] * x.dim()
        shape[self.axis] = -1
        return x * self.gamma.view(shape)


class ScaledSum(nn.Module):
    """inputs[0] + inputs[1]·scale (InceptionResNetV2's CustomScaleLayer)."""

    shape_rule = "broadcast"  # output shape known without running (see lower.py)


    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y * self.scale


class Identity(nn.Module):
    shape_rule = "same"  # output shape known without running (see lower.py)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Pad(nn.Module):
    """Constant padding with static (before, after) pairs per spatial dim (channels-first)."""

    def __init__(self, pads: list, value: float = 0.0) -> None:
        super().__init__()
        self.pads, self.value = _pad_arg([tuple(p) for p in pads]), value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads, value=self.value)


class Crop(nn.Module):
    """Crop (before, after) per spatial dim of a channels-first tensor."""

    def __init__(self, crops: list) -> None:
        super().__init__()
        self.crops = [tuple(c) for c in crops]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dim, (before, after) in enumerate(self.crops, start=2):
            x = x.narrow(dim, before, x.shape[dim] - before - after)
        return x


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


class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)


class Reshape(nn.Module):
    def __init__(self, shape: tuple) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class Permute(nn.Module):
    def __init__(self, dims: tuple) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, *self.dims)


class RepeatVector(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1).expand(-1, self.n, -1)


class Resize(nn.Module):
    """Upsampling/resizing of a channels-first tensor (TF half-pixel centres, no antialias)."""

    def __init__(self, mode: str, size: tuple | None = None, scale: tuple | None = None) -> None:
        super().__init__()
        self.mode, self.size, self.scale = mode, size, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self.size
        if size is None:
            size = tuple(int(s) * f for s, f in zip(x.shape[2:], self.scale, strict=True))
        if self.mode == "nearest" and self.scale is not None:
            return F.interpolate(x, size=size, mode="nearest")
        if self.mode == "nearest":
            return F.interpolate(x, size=size, mode="nearest-exact")
        return F.interpolate(x, size=size, mode=self.mode, align_corners=False, antialias=False)


class ToChannelsFirst(nn.Module):
    """(N, *spatial, C) → (N, C, *spatial)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.movedim(-1, 1)


class ToChannelsLast(nn.Module):
    """(N, C, *spatial) → (N, *spatial, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.movedim(1, -1)
