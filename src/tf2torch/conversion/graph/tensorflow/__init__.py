"""TensorFlow graph op converters (SavedModels, frozen GraphDefs, meta graphs): one per op,
lowered to the shared runtime modules, the TFLite runtime's (TFLite's ops have TF's
semantics) and this front-end's own `modules` (the graph is read by
`tf2torch.sources.tensorflow`).

Importing this package loads no PyTorch; the converter tables load it on registration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tf2torch.conversion.graph.registry import Registry

FORMAT = "tensorflow"
CONVERTER_VERSION = 1


def register_tensorflow_ops(registry: Registry) -> None:
    """Register one converter per supported TensorFlow op."""
    from tf2torch.conversion.graph.tensorflow import array, math, nn

    for table in (nn.CONVERTERS, math.CONVERTERS, array.CONVERTERS):
        for op, converter in table.items():
            registry.register((FORMAT, op, CONVERTER_VERSION), converter)
