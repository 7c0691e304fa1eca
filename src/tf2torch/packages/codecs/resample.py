"""Resampling kernels: for each output index along one axis, k source indices and weights.

TensorFlow's resize kernels re-implemented in numpy instead of calling PIL: PIL always
antialiases and resamples uint8, TF-slim resizes floats with the legacy
`resize_bilinear(align_corners=False)` sampling (x_src = x_dst * in/out, no half-pixel offset),
and a converted classifier is only as faithful as the pixels it is fed. Coordinates are
computed in float32 exactly as TensorFlow's CPU kernels do.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Taps:
    index: np.ndarray  # (out, k) int64
    weight: np.ndarray  # (out, k) float32

    @classmethod
    def of(cls, index: np.ndarray, weight: np.ndarray) -> Taps:
        return cls(index.astype(np.int64), weight.astype(np.float32))

    def window(self, start: int, length: int) -> Taps:
        return Taps(self.index[start : start + length], self.weight[start : start + length])


def _float32_coords(in_size: int, out_size: int, half_pixel: bool) -> np.ndarray:
    """TF's source coordinates: x·(in/out), or (x + 0.5)·(in/out) − 0.5 with half pixels."""
    scale = np.float32(in_size) / np.float32(out_size)
    x = np.arange(out_size, dtype=np.float32)
    if half_pixel:
        return (x + np.float32(0.5)) * scale - np.float32(0.5)
    return x * scale


def _linear_taps(src: np.ndarray, in_size: int) -> Taps:
    """TF's bilinear weights: lower = max(floor, 0), upper = min(ceil, in − 1)."""
    floor = np.floor(src)
    lower = np.maximum(floor, 0)
    upper = np.minimum(np.ceil(src), in_size - 1)
    lerp = (src - floor).astype(np.float32)
    return Taps.of(np.stack([lower, upper], 1), np.stack([np.float32(1) - lerp, lerp], 1))


def _taps_bilinear_tf_legacy(in_size: int, out_size: int) -> Taps:
    """tf.compat.v1.image.resize_bilinear(align_corners=False): no half-pixel offset."""
    return _linear_taps(_float32_coords(in_size, out_size, half_pixel=False), in_size)


def _taps_bilinear(in_size: int, out_size: int) -> Taps:
    """tf.image.resize(method="bilinear", antialias=False): half-pixel centres."""
    return _linear_taps(_float32_coords(in_size, out_size, half_pixel=True), in_size)


def _taps_nearest(in_size: int, out_size: int) -> Taps:
    """tf.image.resize(method="nearest"): floor((x + 0.5)·in/out), clamped."""
    scale = np.float32(in_size) / np.float32(out_size)
    src = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale
    index = np.clip(np.floor(src), 0, in_size - 1)[:, None]
    return Taps.of(index, np.ones_like(index, dtype=np.float32))


def _keys_cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel (a = −0.5, as TF2, PIL and torch antialias use)."""
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def _triangle(x: np.ndarray) -> np.ndarray:
    return np.maximum(1.0 - np.abs(x), 0.0)


def _taps_bicubic(in_size: int, out_size: int) -> Taps:
    """tf.image.resize(method="bicubic", antialias=False).

    TF looks the weights up in a 1024-entry table and gives taps outside the image zero
    weight, renormalising the rest (it does not repeat the edge pixel).
    """
    src = _float32_coords(in_size, out_size, half_pixel=True)
    base = np.floor(src).astype(np.int64)
    delta = np.rint((src - base) * np.float32(1024)) / 1024
    offsets = np.arange(-1, 3)
    index = base[:, None] + offsets
    weight = _keys_cubic(delta[:, None] - offsets).astype(np.float32)
    weight = np.where((index >= 0) & (index < in_size), weight, np.float32(0))
    weight = weight / weight.sum(1, keepdims=True)
    return Taps.of(np.clip(index, 0, in_size - 1), weight.astype(np.float32))


def _antialias_taps(in_size: int, out_size: int, kernel: Callable, support: float) -> Taps:
    """PIL's resampling (also torch's `antialias=True`): the kernel widens when shrinking."""
    scale = in_size / out_size
    stretch = max(scale, 1.0)
    radius = support * stretch
    centre = (np.arange(out_size) + 0.5) * scale
    first = np.maximum((centre - radius + 0.5).astype(np.int64), 0)
    stop = np.minimum((centre + radius + 0.5).astype(np.int64), in_size)
    index = first[:, None] + np.arange(math.ceil(radius) * 2 + 1)
    weight = kernel((index - centre[:, None] + 0.5) / stretch)
    weight = np.where(index < stop[:, None], weight, 0.0)
    weight = weight / weight.sum(1, keepdims=True)
    return Taps.of(np.minimum(index, in_size - 1), weight.astype(np.float32))


KERNELS: dict[str, Callable[[int, int], Taps]] = {
    "bilinear_tf_legacy": _taps_bilinear_tf_legacy,
    "bilinear": _taps_bilinear,
    "nearest": _taps_nearest,
    "bicubic": _taps_bicubic,
}
ANTIALIAS_KERNELS: dict[str, tuple[Callable, float]] = {
    "bilinear": (_triangle, 1.0),
    "bicubic": (_keys_cubic, 2.0),
}


def taps_for(interpolation: str, antialias: bool, in_size: int, out_size: int) -> Taps:
    if antialias:
        return _antialias_taps(in_size, out_size, *ANTIALIAS_KERNELS[interpolation])
    return KERNELS[interpolation](in_size, out_size)


def resample(x: np.ndarray, taps: Taps, axis: int) -> np.ndarray:
    """Weighted sum over taps along axis 0 or 1 of an (H, W, C) float32 array."""
    shape = (-1, 1, 1) if axis == 0 else (1, -1, 1)
    out = None
    for j in range(taps.index.shape[1]):
        term = np.take(x, taps.index[:, j], axis=axis) * taps.weight[:, j].reshape(shape)
        out = term if out is None else out + term
    return out
