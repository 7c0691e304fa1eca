"""Normalisation and per-channel scaling: BatchNorm, LayerNorm, Keras Normalization, LayerScale.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


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
