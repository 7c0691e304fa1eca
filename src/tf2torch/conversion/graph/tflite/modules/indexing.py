"""TFLite's indexing and reduction-by-key ops: gathers, scatters, one-hot, cumulative sums,
reversal, WHERE, arg-max/min, embedding lookups, top-k, segment reductions, in-place slice
updates, bucketing, and local response normalisation. Constant operands as in `values.py`.
"""

from __future__ import annotations

import torch
from torch import nn

from tf2torch.conversion.graph.tflite.modules.values import DTYPES, Operands, ints_of


class GatherTensor(Operands):
    """GATHER with computed (or constant) indices along `axis`."""

    def __init__(self, axis: int, literals: list | None = None,
                 constants: list | None = None) -> None:
        super().__init__(literals, constants)
        self.axis = axis

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        params, indices = self.operands(xs)
        indices = indices.to(device=params.device, dtype=torch.long)
        axis = self.axis % params.dim()
        flat = params.index_select(axis, indices.reshape(-1))
        return flat.reshape(*params.shape[:axis], *indices.shape, *params.shape[axis + 1:])


class GatherNd(Operands):
    """GATHER_ND: indices' last axis indexes params' leading axes."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        params, indices = self.operands(xs)
        indices = indices.to(device=params.device, dtype=torch.long)
        depth = indices.shape[-1]
        picked = params[tuple(indices[..., i] for i in range(depth))]
        return picked.reshape(*indices.shape[:-1], *params.shape[depth:])


class ScatterNd(Operands):
    """SCATTER_ND: zeros of `shape` with `updates` added at `indices` (duplicates sum)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        indices, updates, shape = self.operands(xs)
        indices = indices.to(device=updates.device, dtype=torch.long)
        dims = ints_of(shape)
        out = torch.zeros(dims, dtype=updates.dtype, device=updates.device)
        depth = indices.shape[-1]
        out.index_put_(tuple(indices[..., i].reshape(-1) for i in range(depth)),
                       updates.reshape(-1, *dims[depth:]), accumulate=True)
        return out


class OneHot(Operands):
    """ONE_HOT(indices, depth, on, off) along `axis` (−1: a new last axis)."""

    def __init__(self, axis: int, dtype: str, literals: list | None = None,
                 constants: list | None = None) -> None:
        super().__init__(literals, constants)
        self.axis, self.dtype = axis, dtype

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        indices, depth, on, off = self.operands(xs)
        n = int(depth.reshape(()).item())
        idx = indices.long()
        valid = (idx >= 0) & (idx < n)
        hot = torch.nn.functional.one_hot(torch.where(valid, idx, 0), n).bool() & valid[..., None]
        dtype = DTYPES[self.dtype]
        y = torch.where(hot, on.to(device=idx.device, dtype=dtype),
                        off.to(device=idx.device, dtype=dtype))
        return y if self.axis == -1 else y.movedim(-1, self.axis)


class Cumsum(Operands):
    """CUMSUM along a constant axis, optionally exclusive and/or reversed."""

    def __init__(self, axis: int, exclusive: bool, reverse: bool,
                 literals: list | None = None) -> None:
        super().__init__(literals)
        self.axis, self.exclusive, self.reverse = axis, exclusive, reverse

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.flip(self.axis) if self.reverse else x
        total = torch.cumsum(y, self.axis)
        if self.exclusive:
            total = total - y
        return total.flip(self.axis) if self.reverse else total


class Reverse(nn.Module):
    def __init__(self, axes: tuple) -> None:
        super().__init__()
        self.axes = tuple(axes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(self.axes)


class Where(nn.Module):
    """WHERE with one input: the coordinates of the true (nonzero) elements, int64."""

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        if condition.is_meta:
            raise ValueError("WHERE of a condition computed from the data: its output size "
                             "is only known when it runs (only a shape-derived one converts)")
        return torch.nonzero(condition)


class ArgReduce(nn.Module):
    """ARG_MAX / ARG_MIN along a constant axis (first index among ties, as TFLite)."""

    def __init__(self, kind: str, axis: int, dtype: str) -> None:
        super().__init__()
        self.kind, self.axis, self.dtype = kind, axis, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fn = torch.argmax if self.kind == "max" else torch.argmin
        return fn(x, dim=self.axis).to(DTYPES[self.dtype])


class EmbeddingLookup(nn.Module):
    """EMBEDDING_LOOKUP(ids, table): rows of the (stored) table."""

    def __init__(self, rows: int, row_shape: tuple) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(rows, *row_shape))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.weight[ids.long()]


class TopK(Operands):
    """TOPK_V2 on the last axis: values and int32 indices, largest first, ties in index
    order (a stable sort: torch.topk does not order ties)."""

    def forward(self, *xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, k = self.operands(xs)
        values, indices = torch.sort(x, dim=-1, descending=True, stable=True)
        n = int(k.reshape(()).item())
        return values[..., :n], indices[..., :n].to(torch.int32)


class SegmentReduce(Operands):
    """SEGMENT_SUM (sorted ids, as many segments as the largest id + 1) and
    UNSORTED_SEGMENT_SUM/MAX/MIN/PROD (num_segments given; empty segments hold the
    reduction's identity, the lowest/highest value for max/min)."""

    def __init__(self, kind: str, literals: list | None = None,
                 constants: list | None = None) -> None:
        super().__init__(literals, constants)
        self.kind = kind

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        args = self.operands(xs)
        data = args[0]
        count = int(args[2].reshape(()).item()) if len(args) > 2 else int(args[1].max()) + 1
        ids = args[1].to(device=data.device, dtype=torch.long)
        rows = data.reshape(ids.numel(), *data.shape[ids.dim():])
        index = ids.reshape(-1, *([1] * (rows.dim() - 1))).expand_as(rows)
        fill = {"sum": 0.0, "prod": 1.0,
                "amax": torch.finfo(data.dtype).min if data.is_floating_point()
                else torch.iinfo(data.dtype).min,
                "amin": torch.finfo(data.dtype).max if data.is_floating_point()
                else torch.iinfo(data.dtype).max}[self.kind]
        out = torch.full((count, *rows.shape[1:]), fill, dtype=data.dtype, device=data.device)
        return out.scatter_reduce(0, index, rows, self.kind, include_self=True)


class DynamicUpdateSlice(Operands):
    """DYNAMIC_UPDATE_SLICE: `update` written into a copy of `operand` at `start` (moved in
    so that it fits, as XLA does)."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        operand, update, start = self.operands(xs)
        out = operand.clone()
        index = tuple(slice(min(max(s, 0), n - u), min(max(s, 0), n - u) + u)
                      for s, n, u in zip(ints_of(start), operand.shape, update.shape, strict=True))
        out[index] = update.to(out.dtype)
        return out


class Bucketize(nn.Module):
    def __init__(self, boundaries: list) -> None:
        super().__init__()
        self.boundaries = list(boundaries)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        edges = torch.tensor(self.boundaries, dtype=x.dtype, device=x.device)
        return torch.bucketize(x, edges, right=True).to(torch.int32)


class LocalResponseNorm(nn.Module):
    """LOCAL_RESPONSE_NORMALIZATION over the last (channel) axis:
    x / (bias + alpha · Σ_{|j−c|≤radius} x_j²)^beta."""

    def __init__(self, radius: int, bias: float, alpha: float, beta: float) -> None:
        super().__init__()
        self.radius, self.bias, self.alpha, self.beta = radius, bias, alpha, beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squares = torch.nn.functional.pad(x * x, [self.radius, self.radius])
        window = squares.unfold(-1, 2 * self.radius + 1, 1).sum(-1)
        return x / torch.pow(self.bias + self.alpha * window, self.beta)
