"""TensorFlow's shape ops the TFLite runtime does not cover: strided slices with negative
steps, squeeze / expand_dims by axis, concatenation with stored parts.
"""

from __future__ import annotations

import torch
from torch import nn


class StridedSlice(nn.Module):
    """Items per axis: [start, stop, step] (None = open; a negative step flips), "new" (a
    new axis) or an int (take one position, drop the axis)."""

    def __init__(self, items: list) -> None:
        super().__init__()
        self.items = [tuple(i) if isinstance(i, list) else i for i in items]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index: list = []
        flips: list[int] = []
        axis = 0  # axis of the result
        for item in self.items:
            if item == "new":
                index.append(None)
                axis += 1
            elif isinstance(item, int):
                index.append(item)
            else:
                start, stop, step = item
                if step is not None and step < 0:
                    index.append(_reversed(x.shape[len(index) - index.count(None)],
                                           start, stop, step))
                    flips.append(axis)
                else:
                    index.append(slice(start, stop, step))
                axis += 1
        y = x[tuple(index)]
        return y.flip(flips) if flips else y


def _reversed(size: int, start, stop, step: int) -> slice:
    """The positions a negative-step slice visits, as an ascending slice (flipped after)."""
    picked = range(size)[slice(start, stop, step)]
    if len(picked) == 0:
        return slice(0, 0)
    return slice(picked[-1], picked[0] + 1, -step)


class Squeeze(nn.Module):
    def __init__(self, dims: tuple) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.squeeze(self.dims) if self.dims else x.squeeze()


class ExpandDims(nn.Module):
    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(self.axis)


class Concat(nn.Module):
    """ConcatV2 along `axis`; stored parts (buffers `const<position>`) are broadcast to the
    batch of the computed ones."""

    def __init__(self, axis: int, const_shapes: dict | None = None) -> None:
        super().__init__()
        self.axis = axis
        self.positions = sorted(int(p) for p in (const_shapes or {}))
        for pos in self.positions:
            self.register_buffer(f"const{pos}", torch.empty(tuple(const_shapes[str(pos)])))

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        it = iter(xs)
        parts = [getattr(self, f"const{i}") if i in self.positions else next(it)
                 for i in range(len(xs) + len(self.positions))]
        return torch.cat(parts, dim=self.axis)
