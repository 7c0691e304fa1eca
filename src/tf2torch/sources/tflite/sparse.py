"""Densify sparse TFLite constants (what the DENSIFY op does at run time), at read time.

Follows TFLite's `FormatConverter::SparseToDense`: walk the traversal levels; a dense level
enumerates its size, a CSR level the indices of its segment; block levels refine the
original dimension they map to. The stored values come in that walk's order.
"""

from __future__ import annotations

import numpy as np

from tf2torch.errors import SourceError
from tf2torch.sources.tflite.schema import Sparsity


def densify(values: np.ndarray, sparsity: Sparsity, shape: tuple[int, ...]) -> np.ndarray:
    rank = len(shape)
    order = sparsity.traversal_order
    block_sizes = [sparsity.levels[rank + i][0] for i in range(len(sparsity.block_map))]
    coords: list[tuple[int, ...]] = []

    def walk(level: int, prev: int, index: list[int]) -> None:
        if level == len(order):
            coords.append(_original(index, order, sparsity.block_map, block_sizes, rank))
            return
        size, segments, indices = sparsity.levels[level]
        if not segments:  # dense level
            for i in range(size):
                index[level] = i
                walk(level + 1, prev * size + i, index)
            return
        if prev + 1 >= len(segments):
            return
        for i in range(segments[prev], segments[prev + 1]):
            index[level] = indices[i]
            walk(level + 1, i, index)

    walk(0, 0, [0] * len(order))
    if len(coords) != values.size:
        raise SourceError(f"sparse tensor: {values.size} values for {len(coords)} positions")
    dense = np.zeros(shape, values.dtype)
    if coords:
        try:
            dense[tuple(np.array(coords).T)] = values.reshape(-1)
        except IndexError:
            raise SourceError(f"sparse tensor: an index lies outside its shape {list(shape)}") \
                from None
    return dense


def _original(index: list[int], order: tuple[int, ...], block_map: tuple[int, ...],
              block_sizes: list[int], rank: int) -> tuple[int, ...]:
    orig = [0] * rank
    for level in range(rank):
        orig[order[level]] = index[level]
    for level in range(rank, len(order)):
        block = order[level] - rank
        dim = block_map[block]
        orig[dim] = orig[dim] * block_sizes[block] + index[level]
    return tuple(orig)
