"""TFLite's weighted layers and pooling: conv, transpose conv, fully connected, batch matmul,
each with its fused activation (`fused`).
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


def fused(x: torch.Tensor, activation: str) -> torch.Tensor:
    return FUSED[activation](x)


def same_device(xs) -> tuple[torch.Tensor, ...]:
    """Tensors on one device: a shape-derived tensor (made on the CPU) joins the data's."""
    device = next((x.device for x in xs if x.device.type != "cpu"), None)
    return tuple(xs) if device is None else tuple(x.to(device) for x in xs)


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
        return fused(self.crop(self.conv(x)), self.activation)

    def crop(self, y: torch.Tensor) -> torch.Tensor:
        for dim, out in enumerate(self.out_size, start=2):
            full = y.shape[dim]
            start = max(full - out, 0) // 2 if self.padding == "same" else 0
            length = min(out, full - start)
            y = y.narrow(dim, start, length)
            if length < out:
                pad = [0, 0] * (y.dim() - 1 - dim) + [0, out - length]
                y = F.pad(y, pad)
        return y


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
    """MAX_POOL_2D / AVERAGE_POOL_2D / L2_POOL_2D (cf) with TF SAME semantics and a fused
    activation."""

    def __init__(self, kind: str, pool_size: tuple, strides: tuple, padding: str,
                 activation: str = "linear") -> None:
        super().__init__("avg" if kind == "l2" else kind, pool_size, strides, padding)
        self.activation, self.l2 = activation, kind == "l2"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.l2:  # L2_POOL_2D: √(mean of squares over the real cells)
            return fused(torch.sqrt(super().forward(x * x)), self.activation)
        return fused(super().forward(x), self.activation)


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
