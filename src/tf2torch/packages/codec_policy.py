"""Which encoder and decoder a package records for a conversion."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from tf2torch.conversion.convert import Conversion
from tf2torch.packages.codecs import Decoder, Encoder
from tf2torch.util.choices import PREPROCESS_CHOICES
from tf2torch.verification.checks import zero_batch


def codecs_for(conversion: Conversion, preprocess: str = "auto", labels: str | None = None,
               ) -> tuple[Encoder | None, Decoder | None]:
    """The encoder/decoder a package records.

    Zoo models: their own (slim preprocessing, 1001 ImageNet classes). Graph models: what the
    user names — `preprocess` one of PREPROCESS_CHOICES ("auto": raw 0–255 pixels when the
    model starts with its own Rescaling/Normalization, else none) and `labels` "imagenet" or a
    text file with one class name per line.
    """
    if conversion.architecture == "mobilenet_v2":
        size = conversion.input_shape[-1]
        return Encoder.slim(size), Decoder.imagenet(conversion.num_classes or 1001)
    if preprocess not in PREPROCESS_CHOICES:
        raise ValueError(f"preprocess={preprocess!r}; choose one of {PREPROCESS_CHOICES}")
    if len(conversion.inputs) != 1 or len(conversion.input_shape) != 3:
        return None, None
    return _graph_encoder(conversion, preprocess), _graph_decoder(conversion, labels)


def _graph_encoder(conversion: Conversion, preprocess: str) -> Encoder | None:
    layout = "NHWC" if conversion.layout == "nhwc" else "NCHW"
    h, w = (conversion.input_shape[:2] if layout == "NHWC" else conversion.input_shape[1:])
    size = (h or 224, w or 224)
    if preprocess == "auto":
        preprocess = "raw" if _starts_with_rescaling(conversion) else "none"
    if preprocess == "none":
        return None
    if preprocess == "raw":
        return Encoder(size, "central_crop_then_resize", 1.0, "bilinear", True, 255.0,
                       (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "RGB", layout)
    if preprocess.startswith("keras-"):
        return Encoder.keras(size, preprocess.removeprefix("keras-"), layout)
    encoder = Encoder.slim(size) if preprocess == "slim" else Encoder.imagenet(size)
    return dataclasses.replace(encoder, layout=layout)


def _starts_with_rescaling(conversion: Conversion) -> bool:
    nodes = conversion.config.get("graph", {}).get("nodes", [])
    first = next((n for n in nodes if n["op"] != "InputLayer"), None)
    return first is not None and first["op"] in ("Rescaling", "Normalization")


def _graph_decoder(conversion: Conversion, labels: str | None) -> Decoder | None:
    if labels is None:
        return None
    if labels == "imagenet":
        return Decoder.imagenet(conversion.num_classes or _output_width(conversion))
    names = Path(labels).read_text(encoding="utf-8").splitlines()
    return Decoder.custom([n for n in names if n.strip()])


def _output_width(conversion: Conversion) -> int:
    with torch.inference_mode():
        out = conversion.net(*zero_batch(conversion))
    return int((out[0] if isinstance(out, tuple | list) else out).shape[-1])
