"""The image encoder: pixels → the input tensor a converted model expects.

A frozen dataclass described entirely by data, so a model card stores it as JSON and a package
loads with no code from its author. The pixel work is numpy (single-threaded) rather than
torch: a few dozen tiny ops on torch's thread pool stall for milliseconds each when the CPU is
shared, as it is in data-loader workers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tf2torch.errors import PackageError
from tf2torch.packages.codecs.fields import check_field, from_json_dict, is_number, to_json_dict
from tf2torch.packages.codecs.images import ImageInput, load_rgb
from tf2torch.packages.codecs.resample import (
    ANTIALIAS_KERNELS,
    KERNELS,
    Taps,
    resample,
    taps_for,
)

Box = tuple[int, int, int, int]  # top, left, height, width

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class _Plan:
    crop: Box  # taken from the source before resizing
    resize_to: tuple[int, int]
    window: Box  # kept from the resized image


def _tf_central_crop_box(h: int, w: int, fraction: float) -> Box:
    """tf.image.central_crop's exact arithmetic: start = int((n − n·f) / 2), size = n − 2·start."""
    top = int((float(h) - float(h) * fraction) / 2)
    left = int((float(w) - float(w) * fraction) / 2)
    return top, left, h - 2 * top, w - 2 * left


def _plan_central_crop_then_resize(h: int, w: int, enc: Encoder) -> _Plan:
    """TF-slim / Inception evaluation: central crop, then resize to the input size."""
    box = _tf_central_crop_box(h, w, enc.crop_fraction)
    return _Plan(box, enc.size, (0, 0, *enc.size))


def _plan_resize_shorter_then_center_crop(h: int, w: int, enc: Encoder) -> _Plan:
    """torchvision / timm evaluation: resize to size / crop_pct, then centre-crop the size."""
    out_h, out_w = enc.size
    scaled = (math.floor(out_h / enc.crop_fraction), math.floor(out_w / enc.crop_fraction))
    if out_h == out_w:  # timm: Resize(int) scales the shorter side, keeping aspect ratio
        short, long = min(h, w), max(h, w)
        new_long = int(scaled[0] * long / short)
        scaled = (scaled[0], new_long) if h <= w else (new_long, scaled[0])
    # torchvision CenterCrop rounds the offset with Python's round().
    top = round((scaled[0] - out_h) / 2.0)
    left = round((scaled[1] - out_w) / 2.0)
    return _Plan((0, 0, h, w), scaled, (top, left, out_h, out_w))


_PLANS: dict[str, Callable[[int, int, Encoder], _Plan]] = {
    "central_crop_then_resize": _plan_central_crop_then_resize,
    "resize_shorter_then_center_crop": _plan_resize_shorter_then_center_crop,
}

_KERAS_MODES: dict[str, dict[str, Any]] = {
    # keras.applications.imagenet_utils.preprocess_input modes, on 0..255 inputs
    "tf": {"value_range": 255.0, "mean": (127.5,) * 3, "std": (127.5,) * 3},
    "torch": {"value_range": 1.0, "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
    "caffe": {
        "value_range": 255.0,
        "mean": (103.939, 116.779, 123.68),
        "std": (1.0, 1.0, 1.0),
        "channel_order": "BGR",
    },
}


def _size_pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else tuple(size)


@dataclass(frozen=True)
class Encoder:
    """Turns images into the input tensor a converted model expects.

    Pipeline: uint8 RGB -> float in [0, value_range] -> crop/resize per `resize` ->
    reorder channels -> (x − mean) / std per channel -> layout. `mean` and `std` are given in
    the output channel order. A scale/offset scheme y = x·s + o is mean = −o/s, std = 1/s
    (TF-slim's (x − 0.5)·2 is mean 0.5, std 0.5).

    Fields:
        size: output (height, width).
        resize: "central_crop_then_resize" (TF-slim: tf.image.central_crop(crop_fraction),
            then resize to `size`; crop_fraction 1.0 is a plain resize) or
            "resize_shorter_then_center_crop" (torchvision/timm: resize to
            floor(size / crop_fraction), shorter side for square sizes, then centre-crop).
        crop_fraction: the crop fraction / crop_pct above, in (0, 1].
        interpolation: "bilinear_tf_legacy" (tf.compat.v1 resize_bilinear, align_corners=False),
            "bilinear" (half-pixel, TF2 tf.image.resize), "nearest" (TF2), "bicubic" (TF2, Keys).
        antialias: widen the kernel when shrinking, as PIL and torchvision do
            ("bilinear" and "bicubic" only).
        value_range: 1.0 (pixels / 255) or 255.0 (raw pixel values).
        mean, std: per-channel normalisation after resizing.
        channel_order: "RGB" or "BGR".
        layout: "NCHW" (zoo models) or "NHWC" (graph-converted Keras / TFLite models).
    """

    size: tuple[int, int]
    resize: str
    crop_fraction: float
    interpolation: str
    antialias: bool
    value_range: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channel_order: str
    layout: str

    def __post_init__(self) -> None:
        for name in ("size", "mean", "std"):
            value = getattr(self, name)
            if isinstance(value, list):  # JSON gives lists; keep the dataclass hashable
                object.__setattr__(self, name, tuple(value))
        self._validate()

    def _validate(self) -> None:
        c = functools.partial(check_field, owner="encoder")
        ok_size = isinstance(self.size, tuple) and len(self.size) == 2
        c(ok_size and all(isinstance(s, int) and s > 0 for s in self.size), field="size",
          why=f"must be [height, width] of positive integers, got {self.size!r}")
        c(self.resize in _PLANS, field="resize", why=f"must be one of {sorted(_PLANS)}")
        c(is_number(self.crop_fraction) and 0 < self.crop_fraction <= 1, field="crop_fraction",
          why=f"must be in (0, 1], got {self.crop_fraction!r}")
        c(self.interpolation in KERNELS, field="interpolation",
          why=f"must be one of {sorted(KERNELS)}, got {self.interpolation!r}")
        c(isinstance(self.antialias, bool), field="antialias", why="must be true or false")
        c(not self.antialias or self.interpolation in ANTIALIAS_KERNELS, field="antialias",
          why=f"is only available for {sorted(ANTIALIAS_KERNELS)}")
        c(is_number(self.value_range) and self.value_range > 0, field="value_range",
          why="must be a positive number (1.0 or 255.0)")
        for name in ("mean", "std"):
            v = getattr(self, name)
            c(isinstance(v, tuple) and len(v) == 3 and all(map(is_number, v)), field=name,
              why=f"must be 3 numbers, got {v!r}")
        c(all(s > 0 for s in self.std), field="std", why="must be positive")
        c(self.channel_order in ("RGB", "BGR"), field="channel_order", why="must be RGB or BGR")
        c(self.layout in ("NCHW", "NHWC"), field="layout", why="must be NCHW or NHWC")

    # -- factories ---------------------------------------------------------------------------

    @classmethod
    def slim(cls, size: int | Sequence[int]) -> Encoder:
        """TF-slim Inception/MobileNet evaluation preprocessing, giving [-1, 1] NCHW RGB."""
        return cls(_size_pair(size), "central_crop_then_resize", 0.875, "bilinear_tf_legacy",
                   False, 1.0, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "RGB", "NCHW")

    @classmethod
    def imagenet(cls, size: int | Sequence[int], crop_pct: float = 0.875,
                 interpolation: str = "bilinear", antialias: bool = True) -> Encoder:
        """torchvision/timm evaluation: resize, centre crop, ImageNet mean/std, NCHW RGB."""
        return cls(_size_pair(size), "resize_shorter_then_center_crop", crop_pct, interpolation,
                   antialias, 1.0, IMAGENET_MEAN, IMAGENET_STD, "RGB", "NCHW")

    @classmethod
    def keras(cls, size: int | Sequence[int], mode: str, layout: str = "NHWC") -> Encoder:
        """A plain resize followed by keras.applications `preprocess_input(mode=...)`.

        mode: "tf" (x/127.5 − 1), "torch" (ImageNet mean/std) or "caffe" (BGR, mean subtracted).
        """
        if mode not in _KERAS_MODES:
            raise PackageError(f"encoder: unknown Keras mode {mode!r}; use {sorted(_KERAS_MODES)}")
        fields = {"channel_order": "RGB", **_KERAS_MODES[mode]}
        return cls(size=_size_pair(size), resize="central_crop_then_resize", crop_fraction=1.0,
                   interpolation="bilinear", antialias=True, layout=layout, **fields)

    # -- serialisation -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return to_json_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Encoder:
        return from_json_dict(cls, data)

    # -- encoding ----------------------------------------------------------------------------

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """Shape of one encoded image: (3, H, W) or (H, W, 3)."""
        h, w = self.size
        return (3, h, w) if self.layout == "NCHW" else (h, w, 3)

    def __call__(self, images: ImageInput | Sequence[ImageInput]) -> torch.Tensor:
        """Encode one image or a list of images into a float32 batch."""
        items = list(images) if isinstance(images, (list, tuple)) else [images]
        if not items:
            raise ValueError("no images to encode")
        return torch.stack([self.encode_rgb(load_rgb(item)) for item in items])

    def encode_rgb(self, rgb: np.ndarray) -> torch.Tensor:
        """One decoded uint8 (H, W, 3) RGB array to one tensor of `sample_shape`."""
        plan = _PLANS[self.resize](rgb.shape[0], rgb.shape[1], self)
        top, left, h, w = plan.crop
        x = self._resize(rgb[top : top + h, left : left + w], plan)
        if self.channel_order == "BGR":
            x = x[:, :, ::-1]
        x = (x - np.array(self.mean, np.float32)) / np.array(self.std, np.float32)
        if self.layout == "NCHW":
            x = x.transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(x))

    def _resize(self, pixels: np.ndarray, plan: _Plan) -> np.ndarray:
        top, left, out_h, out_w = plan.window
        (in_h, in_w), (to_h, to_w) = pixels.shape[:2], plan.resize_to
        rows = taps_for(self.interpolation, self.antialias, in_h, to_h).window(top, out_h)
        cols = taps_for(self.interpolation, self.antialias, in_w, to_w).window(left, out_w)
        # Convert only the sampled rows to float. TF's convert_image_dtype multiplies by the
        # float32 constant 1/255 before resizing; doing the same keeps the results bit-close.
        used, remapped = np.unique(rows.index, return_inverse=True)
        x = pixels[used].astype(np.float32) * np.float32(self.value_range / 255.0)
        rows = Taps(remapped.reshape(rows.index.shape), rows.weight)
        return resample(resample(x, rows, axis=0), cols, axis=1)
