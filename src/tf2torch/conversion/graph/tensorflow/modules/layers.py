"""TensorFlow's matrix ops with operands that may be stored constants (MatMul,
BatchMatMul, Einsum), and the ops that pick values: TopKV2, ArgMax/ArgMin, GatherV2.
"""

from __future__ import annotations

import torch
from torch import nn


class _Constants(nn.Module):
    """Holds stored operands as buffers `const<position>` and merges them with the inputs."""

    def __init__(self, const_shapes: dict | None) -> None:
        super().__init__()
        self.positions = sorted(int(p) for p in (const_shapes or {}))
        for pos in self.positions:
            self.register_buffer(f"const{pos}", torch.empty(tuple(const_shapes[str(pos)])))

    def operands(self, xs: tuple) -> list[torch.Tensor]:
        it = iter(xs)
        count = len(xs) + len(self.positions)
        return [getattr(self, f"const{i}") if i in self.positions else next(it)
                for i in range(count)]


class MatMul(_Constants):
    """MatMul / BatchMatMulV2: `transpose_a`/`adj_x`, `transpose_b`/`adj_y`."""

    def __init__(self, transpose_a: bool, transpose_b: bool,
                 const_shapes: dict | None = None) -> None:
        super().__init__(const_shapes)
        self.transpose_a, self.transpose_b = transpose_a, transpose_b

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        a, b = self.operands(xs)
        if self.transpose_a:
            a = a.transpose(-1, -2)
        if self.transpose_b:
            b = b.transpose(-1, -2)
        return torch.matmul(a, b)


class Einsum(_Constants):
    def __init__(self, equation: str, const_shapes: dict | None = None) -> None:
        super().__init__(const_shapes)
        self.equation = equation

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.einsum(self.equation, *self.operands(xs))


class TopK(nn.Module):
    """TopKV2 on the last axis: (values, int32 indices), largest first."""

    def __init__(self, k: int, sorted: bool = True) -> None:
        super().__init__()
        self.k, self.sorted = k, sorted

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values, indices = torch.topk(x, self.k, dim=-1, largest=True, sorted=True)
        return values, indices.to(torch.int32)


class ArgMax(nn.Module):
    def __init__(self, axis: int, smallest: bool = False, int64: bool = True) -> None:
        super().__init__()
        self.axis, self.smallest, self.int64 = axis, smallest, int64

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        found = torch.argmin(x, self.axis) if self.smallest else torch.argmax(x, self.axis)
        return found if self.int64 else found.to(torch.int32)


class Gather(_Constants):
    """GatherV2 (batch_dims 0): params[..., indices, ...] along `axis`; either operand may
    be stored (an embedding table), negative indices are not wrapped (TF refuses them)."""

    def __init__(self, axis: int, const_shapes: dict | None = None,
                 indices: list | None = None) -> None:
        super().__init__(const_shapes)
        self.axis, self.indices = axis, indices

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.indices is not None:
            params = self.operands(xs)[0]
            idx = torch.tensor(self.indices, dtype=torch.long, device=params.device)
        else:
            params, idx = self.operands(xs)
            idx = idx.long()
        out = params.index_select(self.axis, idx.reshape(-1))
        return out.reshape(*params.shape[:self.axis], *idx.shape, *params.shape[self.axis + 1:])
