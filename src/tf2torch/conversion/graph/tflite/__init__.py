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
    from tf2torch.conversion.graph.tflite import (
        conv,
        custom,
        elementwise,
        quantized,
        refusals,
        rnn,
        shape,
        values,
    )

    tables = (conv.CONVERTERS, elementwise.CONVERTERS, shape.CONVERTERS, values.CONVERTERS,
              rnn.CONVERTERS, custom.CONVERTERS, {"QUANTIZE": quantized.convert_quantize})
    for table in tables:
        for op, converter in table.items():
            registry.register((FORMAT, op, CONVERTER_VERSION),
                              quantized.quantization_aware(op, converter))
    for op, why in refusals.REFUSED.items():
        registry.refuse(FORMAT, op, why)
    registry.add_check(FORMAT, quantized.check_simulation)
