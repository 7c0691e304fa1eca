"""Decoding files, PIL images and arrays to upright uint8 RGB.

Input images are made upright from their EXIF orientation and converted to RGB. Transparent
images are composited on white (not alpha-dropped): the colour under fully transparent pixels
is arbitrary (often black) and would otherwise leak into the prediction.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeAlias

import numpy as np
from PIL import Image, ImageOps

from tf2torch.errors import SourceError

ImageInput: TypeAlias = "str | os.PathLike[str] | Image.Image | np.ndarray"


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
