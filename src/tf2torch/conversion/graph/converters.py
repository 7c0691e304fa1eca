"""The built-in registry: every front-end's table of op converters, in one explicit list.

The registry module knows no front-end; each front-end package owns its converter table and
a function that registers it. Adding a format adds one line here.
"""

from __future__ import annotations

import functools

from tf2torch.conversion.graph.keras import register_keras_layers
from tf2torch.conversion.graph.registry import Registry
from tf2torch.conversion.graph.tensorflow import register_tensorflow_ops
from tf2torch.conversion.graph.tflite import register_tflite_ops

FRONTENDS = (register_keras_layers, register_tflite_ops, register_tensorflow_ops)


@functools.cache
def default_registry() -> Registry:
    """The registry with every built-in front-end's converters (built once, on first use)."""
    registry = Registry()
    for register in FRONTENDS:
        register(registry)
    return registry
