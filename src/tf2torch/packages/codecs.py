"""Image encoder (pixels -> input tensor) and label decoder (scores -> named classes).

Both are frozen dataclasses described entirely by data, so a model card can store them as JSON
(`to_dict` / `from_dict`) and a package loads with no code from its author.

The encoder re-implements TensorFlow's resize kernels in numpy instead of calling PIL:
PIL always antialiases and resamples uint8, TF-slim resizes floats with the legacy
`resize_bilinear(align_corners=False)` sampling (x_src = x_dst * in/out, no half-pixel offset),
and a converted classifier is only as faithful as the pixels it is fed. The pixel work is
numpy (single-threaded) rather than torch: a few dozen tiny ops on torch's thread pool stall for
milliseconds each when the CPU is shared, as it is in data-loader workers.

Input images are made upright from their EXIF orientation and converted to RGB. Transparent
images are composited on white (not alpha-dropped): the colour under fully transparent pixels
is arbitrary (often black) and would otherwise leak into the prediction.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps

from tf2torch.errors import PackageError, SourceError

ImageInput: TypeAlias = "str | os.PathLike[str] | Image.Image | np.ndarray"
Box = tuple[int, int, int, int]  # top, left, height, width

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------------------------------------
# Serialisation shared by Encoder and Decoder


def _check(ok: bool, owner: str, field: str, why: str) -> None:
    if not ok:
        raise PackageError(f"{owner}: field '{field}' {why}")


def _from_dict(cls: type, data: Any) -> Any:
    """Build a dataclass from a JSON dict, refusing missing and unknown keys by name."""
    owner = cls.__name__.lower()
    if not isinstance(data, dict):
        raise PackageError(f"{owner}: expected a JSON object, got {type(data).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        _check(key in names, owner, key, f"is unknown (expected: {', '.join(names)})")
    for name in names:
        _check(name in data, owner, name, "is missing")
    return cls(**data)


def _to_dict(obj: Any) -> dict[str, Any]:
    """Fields as JSON-ready values (tuples become lists)."""
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# ---------------------------------------------------------------------------------------------
# Decoding files, PIL images and arrays to upright uint8 RGB


def load_rgb(image: ImageInput) -> np.ndarray:
    """One image as an upright uint8 RGB array of shape (H, W, 3).

    Files and PIL images get their EXIF orientation applied; grayscale, palette, CMYK and
    16-bit images are converted; transparency is composited on white. A file that cannot be
    read raises `SourceError` naming it. PIL decodes JPEG exactly like
    `tf.io.decode_jpeg(dct_method="INTEGER_ACCURATE")`; TF's default fast DCT differs from
    both by a few grey levels.
    """
    if isinstance(image, (str, os.PathLike)):
        return _load_file(Path(image))
    if isinstance(image, Image.Image):
        return _pil_to_rgb(ImageOps.exif_transpose(image))
    if isinstance(image, np.ndarray):
        return _array_to_rgb(image)
    raise TypeError(
        f"expected a file path, PIL image or uint8 numpy array, got {type(image).__name__}"
    )


def _load_file(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()  # decode now, so a truncated file fails here and names itself
            return _pil_to_rgb(ImageOps.exif_transpose(im))
    except FileNotFoundError:
        raise SourceError(f"{path}: no such image file") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise SourceError(f"{path}: not a readable image ({e})") from e


def _pil_to_rgb(im: Image.Image) -> np.ndarray:
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        # PIL's convert("RGB") clips 16-bit values at 255; keep the top 8 bits instead.
        wide = np.asarray(im).astype(np.int64)
        return _array_to_rgb((np.clip(wide, 0, 65535) >> 8).astype(np.uint8))
    if im.has_transparency_data:
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im.convert("RGBA"))
    return np.asarray(im.convert("RGB"))


def _array_to_rgb(a: np.ndarray) -> np.ndarray:
    if a.dtype != np.uint8:
        raise ValueError(f"image arrays must be uint8 (0..255), got {a.dtype}")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4) or 0 in a.shape:
        raise ValueError(f"image arrays must be HxW, HxWx1, HxWx3 or HxWx4, got {a.shape}")
    if a.shape[2] == 1:
        return np.repeat(a, 3, axis=2)
    if a.shape[2] == 4:
        return _pil_to_rgb(Image.fromarray(np.ascontiguousarray(a), "RGBA"))
    return a


# ---------------------------------------------------------------------------------------------
# Resampling kernels: for each output index along one axis, k source indices and weights.
# Coordinates are computed in float32 exactly as TensorFlow's CPU kernels do.


@dataclass(frozen=True)
class _Taps:
    index: np.ndarray  # (out, k) int64
    weight: np.ndarray  # (out, k) float32

    @classmethod
    def of(cls, index: np.ndarray, weight: np.ndarray) -> _Taps:
        return cls(index.astype(np.int64), weight.astype(np.float32))

    def window(self, start: int, length: int) -> _Taps:
        return _Taps(self.index[start : start + length], self.weight[start : start + length])


def _float32_coords(in_size: int, out_size: int, half_pixel: bool) -> np.ndarray:
    """TF's source coordinates: x·(in/out), or (x + 0.5)·(in/out) − 0.5 with half pixels."""
    scale = np.float32(in_size) / np.float32(out_size)
    x = np.arange(out_size, dtype=np.float32)
    if half_pixel:
        return (x + np.float32(0.5)) * scale - np.float32(0.5)
    return x * scale


def _linear_taps(src: np.ndarray, in_size: int) -> _Taps:
    """TF's bilinear weights: lower = max(floor, 0), upper = min(ceil, in − 1)."""
    floor = np.floor(src)
    lower = np.maximum(floor, 0)
    upper = np.minimum(np.ceil(src), in_size - 1)
    lerp = (src - floor).astype(np.float32)
    return _Taps.of(np.stack([lower, upper], 1), np.stack([np.float32(1) - lerp, lerp], 1))


def _taps_bilinear_tf_legacy(in_size: int, out_size: int) -> _Taps:
    """tf.compat.v1.image.resize_bilinear(align_corners=False): no half-pixel offset."""
    return _linear_taps(_float32_coords(in_size, out_size, half_pixel=False), in_size)


def _taps_bilinear(in_size: int, out_size: int) -> _Taps:
    """tf.image.resize(method="bilinear", antialias=False): half-pixel centres."""
    return _linear_taps(_float32_coords(in_size, out_size, half_pixel=True), in_size)


def _taps_nearest(in_size: int, out_size: int) -> _Taps:
    """tf.image.resize(method="nearest"): floor((x + 0.5)·in/out), clamped."""
    scale = np.float32(in_size) / np.float32(out_size)
    src = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale
    index = np.clip(np.floor(src), 0, in_size - 1)[:, None]
    return _Taps.of(index, np.ones_like(index, dtype=np.float32))


def _keys_cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel (a = −0.5, as TF2, PIL and torch antialias use)."""
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def _triangle(x: np.ndarray) -> np.ndarray:
    return np.maximum(1.0 - np.abs(x), 0.0)


def _taps_bicubic(in_size: int, out_size: int) -> _Taps:
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
    return _Taps.of(np.clip(index, 0, in_size - 1), weight.astype(np.float32))


def _antialias_taps(in_size: int, out_size: int, kernel: Callable, support: float) -> _Taps:
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
    return _Taps.of(np.minimum(index, in_size - 1), weight.astype(np.float32))


_KERNELS: dict[str, Callable[[int, int], _Taps]] = {
    "bilinear_tf_legacy": _taps_bilinear_tf_legacy,
    "bilinear": _taps_bilinear,
    "nearest": _taps_nearest,
    "bicubic": _taps_bicubic,
}
_ANTIALIAS_KERNELS: dict[str, tuple[Callable, float]] = {
    "bilinear": (_triangle, 1.0),
    "bicubic": (_keys_cubic, 2.0),
}


def _taps(interpolation: str, antialias: bool, in_size: int, out_size: int) -> _Taps:
    if antialias:
        return _antialias_taps(in_size, out_size, *_ANTIALIAS_KERNELS[interpolation])
    return _KERNELS[interpolation](in_size, out_size)


def _resample(x: np.ndarray, taps: _Taps, axis: int) -> np.ndarray:
    """Weighted sum over taps along axis 0 or 1 of an (H, W, C) float32 array."""
    shape = (-1, 1, 1) if axis == 0 else (1, -1, 1)
    out = None
    for j in range(taps.index.shape[1]):
        term = np.take(x, taps.index[:, j], axis=axis) * taps.weight[:, j].reshape(shape)
        out = term if out is None else out + term
    return out


# ---------------------------------------------------------------------------------------------
# Resize policies: where to crop, what to resize to, which window of the result to keep.


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


# ---------------------------------------------------------------------------------------------
# Encoder


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
        c = functools.partial(_check, owner="encoder")
        ok_size = isinstance(self.size, tuple) and len(self.size) == 2
        c(ok_size and all(isinstance(s, int) and s > 0 for s in self.size), field="size",
          why=f"must be [height, width] of positive integers, got {self.size!r}")
        c(self.resize in _PLANS, field="resize", why=f"must be one of {sorted(_PLANS)}")
        c(_is_number(self.crop_fraction) and 0 < self.crop_fraction <= 1, field="crop_fraction",
          why=f"must be in (0, 1], got {self.crop_fraction!r}")
        c(self.interpolation in _KERNELS, field="interpolation",
          why=f"must be one of {sorted(_KERNELS)}, got {self.interpolation!r}")
        c(isinstance(self.antialias, bool), field="antialias", why="must be true or false")
        c(not self.antialias or self.interpolation in _ANTIALIAS_KERNELS, field="antialias",
          why=f"is only available for {sorted(_ANTIALIAS_KERNELS)}")
        c(_is_number(self.value_range) and self.value_range > 0, field="value_range",
          why="must be a positive number (1.0 or 255.0)")
        for name in ("mean", "std"):
            v = getattr(self, name)
            c(isinstance(v, tuple) and len(v) == 3 and all(map(_is_number, v)), field=name,
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
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Encoder:
        return _from_dict(cls, data)

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
        rows = _taps(self.interpolation, self.antialias, in_h, to_h).window(top, out_h)
        cols = _taps(self.interpolation, self.antialias, in_w, to_w).window(left, out_w)
        # Convert only the sampled rows to float. TF's convert_image_dtype multiplies by the
        # float32 constant 1/255 before resizing; doing the same keeps the results bit-close.
        used, remapped = np.unique(rows.index, return_inverse=True)
        x = pixels[used].astype(np.float32) * np.float32(self.value_range / 255.0)
        rows = _Taps(remapped.reshape(rows.index.shape), rows.weight)
        return _resample(_resample(x, rows, axis=0), cols, axis=1)


# ---------------------------------------------------------------------------------------------
# Labels


_LABEL_FILES: dict[str, tuple[str, int]] = {
    # label set name -> (file in tf2torch/data, number of classes)
    "imagenet-1k": ("imagenet1k_labels.tsv", 1000),
}


@functools.cache
def load_label_set(name: str) -> tuple[tuple[str, str], ...]:
    """(wnid, readable name) per class of a label set shipped with tf2torch."""
    if name not in _LABEL_FILES:
        raise PackageError(f"unknown label set {name!r}; known: {sorted(_LABEL_FILES)}")
    filename, count = _LABEL_FILES[name]
    rows = _read_label_file(filename)
    if len(rows) != count:
        raise PackageError(f"label file {filename} has {len(rows)} classes, expected {count}")
    return rows


def _read_label_file(filename: str) -> tuple[tuple[str, str], ...]:
    resource = importlib.resources.files("tf2torch") / "data" / filename
    try:
        text = resource.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise PackageError(
            f"label file tf2torch/data/{filename} is missing; reinstall tf2torch"
        ) from None
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        wnid, tab, label = line.partition("\t")
        if not tab or not wnid or not label.strip():
            raise PackageError(f"{filename}:{lineno}: expected 'wnid<TAB>name', got {line!r}")
        rows.append((wnid, label.strip()))
    return tuple(rows)


# ---------------------------------------------------------------------------------------------
# Decoder


@dataclass(frozen=True)
class Prediction:
    """One class of a top-k answer."""

    index: int
    wnid: str | None
    label: str
    probability: float

    @property
    def short_label(self) -> str:
        """First synonym of the label: 'tabby' for 'tabby, tabby cat'."""
        return self.label.split(",")[0]


@dataclass(frozen=True)
class Decoder:
    """Turns a model's logits (or probabilities) into named classes.

    Fields:
        num_classes: the model's output width.
        label_set: a label set shipped with tf2torch ("imagenet-1k"), or None with `labels`.
        background_offset: leading "background" classes: 1 for TF-slim's 1001-way heads,
            0 for Keras's 1000-way ones.
        labels: class names of a custom head (after the background classes), or None.
    """

    num_classes: int
    label_set: str | None
    background_offset: int
    labels: tuple[str, ...] | None

    def __post_init__(self) -> None:
        if isinstance(self.labels, list):
            object.__setattr__(self, "labels", tuple(self.labels))
        self._validate()

    def _validate(self) -> None:
        c = functools.partial(_check, owner="decoder")
        c((self.label_set is None) != (self.labels is None), field="labels",
          why="must be given exactly when label_set is null")
        c(self.label_set is None or self.label_set in _LABEL_FILES, field="label_set",
          why=f"must be one of {sorted(_LABEL_FILES)} or null, got {self.label_set!r}")
        c(self.background_offset in (0, 1) and isinstance(self.background_offset, int),
          field="background_offset", why="must be 0 or 1")
        if self.labels is not None:
            c(isinstance(self.labels, tuple) and len(self.labels) > 0
              and all(isinstance(s, str) and s for s in self.labels), field="labels",
              why="must be a non-empty list of non-empty strings")
        # Loading the label set here makes a missing or damaged label file fail at load time.
        named = len(self.labels if self.labels is not None else load_label_set(self.label_set))
        c(isinstance(self.num_classes, int) and self.num_classes == self.background_offset + named,
          field="num_classes",
          why=f"is {self.num_classes!r} but the labels give {self.background_offset} + {named}")

    # -- factories ---------------------------------------------------------------------------

    @classmethod
    def imagenet(cls, num_classes: int, labels: Sequence[str] | None = None) -> Decoder:
        """ImageNet-1k with the form picked by width: 1001 = TF-slim (background at 0), 1000 =
        Keras/torchvision. Other widths need `labels` (a fine-tuned head)."""
        if labels is not None:
            decoder = cls.custom(labels)
            _check(decoder.num_classes == num_classes, "decoder", "labels",
                   f"has {decoder.num_classes} names for {num_classes} classes")
            return decoder
        offsets = {1000: 0, 1001: 1}
        _check(num_classes in offsets, "decoder", "num_classes",
               f"is {num_classes}: ImageNet-1k heads have 1000 or 1001 outputs; "
               "give labels for a custom head")
        return cls(num_classes, "imagenet-1k", offsets[num_classes], None)

    @classmethod
    def custom(cls, labels: Sequence[str]) -> Decoder:
        """A head with its own class names, one per output."""
        return cls(len(labels), None, 0, tuple(labels))

    # -- serialisation -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decoder:
        return _from_dict(cls, data)

    # -- decoding ----------------------------------------------------------------------------

    def entries(self) -> tuple[tuple[str | None, str], ...]:
        """(wnid or None, label) for every output index."""
        named = (load_label_set(self.label_set) if self.label_set is not None
                 else tuple((None, label) for label in self.labels))
        return ((None, "background"),) * self.background_offset + named

    def __call__(self, scores: torch.Tensor | np.ndarray, top: int = 5,
                 apply_softmax: bool = True) -> list[list[Prediction]]:
        """Top-`top` classes per row of a (batch, num_classes) array, most probable first.

        `apply_softmax=False` treats the scores as probabilities already. Ties keep index order.
        """
        x = torch.as_tensor(scores).detach().to("cpu", torch.float64)
        if x.ndim != 2 or x.shape[1] != self.num_classes:
            raise ValueError(f"expected scores of shape (batch, {self.num_classes}), "
                             f"got {tuple(x.shape)}")
        if top < 1:
            raise ValueError(f"top must be at least 1, got {top}")
        probs = torch.softmax(x, dim=1) if apply_softmax else x
        values, indices = torch.sort(probs, dim=1, descending=True, stable=True)
        k, entries = min(top, self.num_classes), self.entries()
        return [
            [Prediction(i, *entries[i], p) for p, i in zip(row_p[:k], row_i[:k], strict=True)]
            for row_p, row_i in zip(values.tolist(), indices.tolist(), strict=True)
        ]


# ---------------------------------------------------------------------------------------------
# Annotation


def annotate(image: ImageInput, predictions: Sequence[Prediction], path: str | Path) -> Path:
    """Write `image` as a PNG at `path` with the predictions listed in its top-left corner."""
    canvas = Image.fromarray(load_rgb(image))
    draw = ImageDraw.Draw(canvas, "RGBA")
    font_size = max(10, min(canvas.size) // 24)
    font = ImageFont.load_default(size=font_size)
    lines = [f"{p.short_label}  {p.probability:.1%}" for p in predictions]
    pad, step = font_size // 3, font_size + font_size // 3
    if lines:  # a translucent box keeps white text legible on any photo
        width = max(draw.textlength(line, font=font) for line in lines)
        draw.rectangle([0, 0, width + 2 * pad, len(lines) * step + pad], fill=(0, 0, 0, 160))
    for n, line in enumerate(lines):
        draw.text((pad, pad + n * step), line, fill=(255, 255, 255, 255), font=font)
    path = Path(path)
    canvas.save(path, format="PNG")
    return path
