"""Predictions drawn on the image they describe.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from tf2torch.packages.codecs.decoder import Prediction
from tf2torch.packages.codecs.images import ImageInput, load_rgb


def draw_predictions(image: ImageInput, predictions: Sequence[Prediction]) -> Image.Image:
    """A copy of `image` with the predictions listed in its top-left corner."""
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
    return canvas


def annotate(image: ImageInput, predictions: Sequence[Prediction], path: str | Path) -> Path:
    """Write `image` as a PNG at `path` with the predictions listed in its top-left corner."""
    path = Path(path)
    draw_predictions(image, predictions).save(path, format="PNG")
    return path
