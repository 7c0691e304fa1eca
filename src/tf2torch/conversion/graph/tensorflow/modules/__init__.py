"""PyTorch modules for TensorFlow op semantics that neither `graph.modules` nor the TFLite
runtime covers. Like those, constructor arguments are plain literals and the files import
only torch: codegen copies them, in `PARTS` order, into standalone model files.
"""

from __future__ import annotations

from tf2torch.conversion.graph.tensorflow.modules.elementwise import (
    BINARY,
    UNARY,
    AddN,
    BiasAdd,
    Binary,
    Cast,
    Clip,
    Select,
    Unary,
)
from tf2torch.conversion.graph.tensorflow.modules.layers import ArgMax, Einsum, Gather, MatMul, TopK
from tf2torch.conversion.graph.tensorflow.modules.shape import Concat, ExpandDims, Squeeze, StridedSlice

PARTS = ("elementwise", "layers", "shape")

__all__ = [
    "BINARY",
    "UNARY",
    "AddN",
    "ArgMax",
    "BiasAdd",
    "Binary",
    "Cast",
    "Clip",
    "Concat",
    "Einsum",
    "ExpandDims",
    "Gather",
    "MatMul",
    "Select",
    "Squeeze",
    "StridedSlice",
    "TopK",
    "Unary",
]
