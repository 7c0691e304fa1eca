"""What a try-it request may send, decoded defensively: an image or a `.npy` array.

Images go through Pillow restricted to common photo formats (never a plugin that shells out,
such as EPS), with the pixel count checked against the server's limit and Pillow's own
decompression-bomb guard before any pixel is decoded. Arrays are read with
`allow_pickle=False`, so no object in them can run code.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from tf2torch.errors import SourceError
from tf2torch.packages.codecs import load_rgb
from tf2torch.web.catalog import NotServed

IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
NPY_MAGIC = b"\x93NUMPY"


@dataclass(frozen=True)
class Limits:
    """Upload limits of the web app; `max_pixels` never exceeds Pillow's own guard."""

    max_upload_bytes: int = 10 << 20
    max_pixels: int = 40_000_000

    @property
    def pixels(self) -> int:
        return min(self.max_pixels, Image.MAX_IMAGE_PIXELS or self.max_pixels)


def decode_image(data: bytes, filename: str, limits: Limits) -> np.ndarray:
    """An uploaded image as upright uint8 RGB, or NotServed (413 too large, 415 not an image)."""
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as im:
            width, height = im.size
            if width * height > limits.pixels:
                raise NotServed(413, f"{filename}: {width}×{height} is {width * height:,} "
                                     f"pixels; this server decodes at most {limits.pixels:,}")
            im.load()
            return load_rgb(im)
    except Image.DecompressionBombError as exc:
        raise NotServed(413, f"{filename}: refused by Pillow's decompression-bomb guard "
                             f"({exc})") from None
    except UnidentifiedImageError:
        raise NotServed(415, f"{filename}: not an image this server reads (it takes "
                             f"{', '.join(IMAGE_FORMATS)} images, or a .npy array)") from None
    except (OSError, ValueError, SyntaxError, SourceError) as exc:
        raise NotServed(422, f"{filename}: a damaged or truncated image ({exc})") from None


def decode_array(data: bytes, filename: str, sample_shape: tuple[int, ...]) -> np.ndarray:
    """An uploaded `.npy` as a float32 batch of one sample of `sample_shape` (batch axis
    optional), or NotServed (422) saying what was wrong."""
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise NotServed(422, f"{filename}: not a readable .npy array ({exc})") from None
    if array.dtype.kind not in "fiub":
        raise NotServed(422, f"{filename}: dtype {array.dtype} is not numeric")
    if tuple(array.shape) == tuple(sample_shape):
        array = array[None]
    if tuple(array.shape) != (1, *sample_shape):
        want = "×".join(map(str, sample_shape))
        raise NotServed(422, f"{filename}: shape {'×'.join(map(str, array.shape))}; this model "
                             f"takes {want} (or 1×{want})")
    return np.ascontiguousarray(array, dtype=np.float32)


def is_npy(data: bytes, filename: str) -> bool:
    return data.startswith(NPY_MAGIC) or Path(filename).suffix.lower() == ".npy"
