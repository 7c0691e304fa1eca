"""TFLite op converters: one per builtin or custom op, lowered to the runtime modules in
`modules` (the file itself is read by `tf2torch.sources.tflite`).

Importing this package loads no PyTorch; the converter tables load it on registration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tf2torch.conversion.graph.registry import Registry

FORMAT = "tflite"
# Converters are registered under version 1: see `tf2torch.sources.tflite.graph._node`.
CONVERTER_VERSION = 1


def register_tflite_ops(registry: Registry) -> None:
    """Register one converter per supported TFLite op (builtin or custom)."""
    from tf2torch.conversion.graph.tflite import conv, custom, elementwise, shape

    for table in (conv.CONVERTERS, elementwise.CONVERTERS, shape.CONVERTERS, custom.CONVERTERS):
        for op, converter in table.items():
            registry.register((FORMAT, op, CONVERTER_VERSION), converter)
