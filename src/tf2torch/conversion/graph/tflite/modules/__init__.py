"""PyTorch modules for TFLite op semantics the shared `graph.modules` does not cover.

Like `graph.modules`, constructor arguments are plain literals so a module rebuilds from its
recorded spec, and the files import only torch and `graph.modules` (as `shared`): codegen
copies them, in `PARTS` order, into standalone model files. Every op with a fused activation
applies it through `fused`. Modules marked "cf" receive channels-first tensors; axis
arguments are already resolved for the layout the module runs in.
"""

from __future__ import annotations

from tf2torch.conversion.graph.tflite.modules.elementwise import (
    BINARY,
    UNARY,
    AddN,
    Binary,
    L2Normalize,
    Reduce,
    Softmax,
    Unary,
)
from tf2torch.conversion.graph.tflite.modules.layers import (
    FUSED,
    BatchMatMul,
    Conv2d,
    FullyConnected,
    Pool2d,
    TransposeConv2d,
    fused,
)
from tf2torch.conversion.graph.tflite.modules.shape import (
    BatchToSpace,
    Concat,
    DepthToSpace,
    Gather,
    Identity,
    PadND,
    Reshape,
    Resize,
    Slice,
    SpaceToBatch,
    Split,
    Stack,
    Tile,
    Transpose,
    Unstack,
)

# The files of this runtime, in the order a generated file holds them.
PARTS = ("layers", "elementwise", "shape")

__all__ = [
    "BINARY",
    "FUSED",
    "UNARY",
    "AddN",
    "BatchMatMul",
    "BatchToSpace",
    "Binary",
    "Concat",
    "Conv2d",
    "DepthToSpace",
    "FullyConnected",
    "Gather",
    "Identity",
    "L2Normalize",
    "PadND",
    "Pool2d",
    "Reduce",
    "Reshape",
    "Resize",
    "Slice",
    "Softmax",
    "SpaceToBatch",
    "Split",
    "Stack",
    "Tile",
    "Transpose",
    "TransposeConv2d",
    "Unary",
    "Unstack",
    "fused",
]
