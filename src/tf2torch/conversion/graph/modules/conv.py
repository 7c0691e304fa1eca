"""Convolutions and dense layers with TF padding (SAME resolved statically or at run time).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tf2torch.conversion.graph.modules.activations import activate


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TF SAME padding (before, after) for one spatial dimension."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def pad_arg(pads: list[tuple[int, int]]) -> list[int]:
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
    return pad_arg(pads)


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
                self.pad_first = pad_arg([tuple(p) for p in padding])
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
