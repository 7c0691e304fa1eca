"""TFLite's shape and data-movement ops: concat, reshape, pads, slices, gathers, space/depth
rearrangements and resizing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tf2torch.conversion.graph.tflite.modules.layers import fused, same_device


class Concat(nn.Module):
    def __init__(self, axis: int, activation: str = "linear") -> None:
        super().__init__()
        self.axis, self.activation = axis, activation

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return fused(torch.cat(same_device(xs), dim=self.axis), self.activation)


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
