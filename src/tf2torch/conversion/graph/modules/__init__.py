"""PyTorch modules that reproduce TensorFlow/Keras op semantics, one file per family.

These files import only torch, the standard library and each other: `codegen.emit_code`
copies them (in `PARTS` order) into standalone model files. Every class takes plain-literal
constructor arguments so a module can be rebuilt from its recorded `ModuleSpec` (see
`lower.py`) without the source file. Layouts: "cf" modules receive channels-first tensors
(N, C, *spatial); the others receive the source's channels-last layout, with axes given
already resolved for the layout they run in. A `ModuleSpec` names a class by its name here.
"""

from __future__ import annotations

from tf2torch.conversion.graph.modules.activations import (
    ELEMENTWISE,
    ELU,
    Act,
    KerasReLU,
    LeakyReLU,
    PReLU,
    activate,
)
from tf2torch.conversion.graph.modules.conv import (
    Conv,
    ConvTranspose,
    Linear,
    SeparableConv,
    pad_arg,
    resolve_pads,
    same_pads,
)
from tf2torch.conversion.graph.modules.merging import BINARY, Concat, Dot, Merge, ScalarOp, ScaledSum
from tf2torch.conversion.graph.modules.normalization import (
    Affine,
    BatchNorm,
    ChannelScale,
    LayerNorm,
    Standardize,
)
from tf2torch.conversion.graph.modules.pooling import GlobalPool, Pool
from tf2torch.conversion.graph.modules.reshaping import (
    Crop,
    Flatten,
    Identity,
    Pad,
    Permute,
    RepeatVector,
    Reshape,
    Resize,
    ToChannelsFirst,
    ToChannelsLast,
)

# The files of this runtime, in the order a generated file holds them.
PARTS = ("activations", "conv", "normalization", "merging", "pooling", "reshaping")

__all__ = [
    "BINARY",
    "ELEMENTWISE",
    "ELU",
    "Act",
    "Affine",
    "BatchNorm",
    "ChannelScale",
    "Concat",
    "Conv",
    "ConvTranspose",
    "Crop",
    "Dot",
    "Flatten",
    "GlobalPool",
    "Identity",
    "KerasReLU",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "Merge",
    "PReLU",
    "Pad",
    "Permute",
    "Pool",
    "RepeatVector",
    "Reshape",
    "Resize",
    "ScalarOp",
    "ScaledSum",
    "SeparableConv",
    "Standardize",
    "ToChannelsFirst",
    "ToChannelsLast",
    "activate",
    "pad_arg",
    "resolve_pads",
    "same_pads",
]
