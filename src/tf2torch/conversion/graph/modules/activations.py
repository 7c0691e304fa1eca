"""Activations by canonical name, and the activation layers (ReLU variants, ELU, PReLU).
"""

from __future__ import annotations

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


def activate(x: torch.Tensor, name: str, axis: int = -1) -> torch.Tensor:
    """Apply an activation by canonical name; `axis` is used by softmax/log_softmax only."""
    if name == "softmax":
        return torch.softmax(x, dim=axis)
    if name == "log_softmax":
        return torch.log_softmax(x, dim=axis)
    return ELEMENTWISE[name](x)


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
            if self.max_value is not None and self.max_value >= 0:
                # ReLU6 as one op: oneDNN then runs it as the convolution's post-op (relu
                # and clamp apart cost one more pass over every activation; BENCHMARKS.md)
                return F.hardtanh(x, 0.0, float(self.max_value))
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
