"""TFLite weight layouts → PyTorch (named in `Binding.transform` as `module:function`)."""

from __future__ import annotations

import numpy as np

_HERE = "tf2torch.conversion.graph.tflite.transforms:"


def ohwi_to_oihw(a: np.ndarray) -> np.ndarray:
    """CONV_2D filter (out, h, w, in) → torch Conv2d weight (out, in, h, w)."""
    return np.transpose(a, (0, 3, 1, 2))


def depthwise_to_torch(a: np.ndarray) -> np.ndarray:
    """DEPTHWISE_CONV_2D filter (1, h, w, C·M) → torch (C·M, 1, h, w); TFLite's channel
    index c·M + m is also torch's grouped-conv output order."""
    return np.transpose(a[0], (2, 0, 1))[:, None]


def transpose_conv_to_torch(a: np.ndarray) -> np.ndarray:
    """TRANSPOSE_CONV filter (out, h, w, in) → torch ConvTranspose2d weight (in, out, h, w)."""
    return np.transpose(a, (3, 0, 1, 2))


OHWI = _HERE + "ohwi_to_oihw"
DEPTHWISE = _HERE + "depthwise_to_torch"
TRANSPOSE_CONV = _HERE + "transpose_conv_to_torch"
