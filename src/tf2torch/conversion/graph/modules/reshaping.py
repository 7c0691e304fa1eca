"""Shape and layout: padding, cropping, reshapes, permutes, resizing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tf2torch.conversion.graph.modules.conv import pad_arg


class Identity(nn.Module):
    shape_rule = "same"  # output shape known without running (see lower.py)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Pad(nn.Module):
    """Constant padding with static (before, after) pairs per spatial dim (channels-first)."""

    def __init__(self, pads: list, value: float = 0.0) -> None:
        super().__init__()
        self.pads, self.value = pad_arg([tuple(p) for p in pads]), value

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
