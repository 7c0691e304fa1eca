"""Weight layout transforms from source layouts to PyTorch, by name (see `Binding.transform`)."""

from __future__ import annotations

import numpy as np


def identity(a: np.ndarray) -> np.ndarray:
    return a


def conv_kernel(a: np.ndarray) -> np.ndarray:
    """Keras conv kernel (*spatial, in, out) → torch (out, in, *spatial).

    Also maps a transpose-conv kernel (*spatial, out, in) → torch's (in, out, *spatial)."""
    rank = a.ndim - 2
    return np.transpose(a, (rank + 1, rank, *range(rank)))


def depthwise_kernel(a: np.ndarray) -> np.ndarray:
    """Keras depthwise kernel (*spatial, channels, multiplier) → torch (C·M, 1, *spatial)."""
    rank = a.ndim - 2
    channels, multiplier = a.shape[-2], a.shape[-1]
    moved = np.transpose(a, (rank, rank + 1, *range(rank)))
    return moved.reshape(channels * multiplier, 1, *a.shape[:rank])


def dense_kernel(a: np.ndarray) -> np.ndarray:
    """Keras Dense kernel (in, out) → torch Linear weight (out, in)."""
    return a.T


def flatten(a: np.ndarray) -> np.ndarray:
    return a.reshape(-1)


TRANSFORMS = {
    "identity": identity,
    "conv_kernel": conv_kernel,
    "depthwise_kernel": depthwise_kernel,
    "dense_kernel": dense_kernel,
    "flatten": flatten,
}
