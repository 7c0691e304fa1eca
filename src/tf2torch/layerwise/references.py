"""Originals with their intermediate tensors exposed: a Keras model, a TFLite file.

A `LayerReference` locates the tensors it can expose for the taps' reference names and
streams them, in execution order, into a callback. Both import TensorFlow lazily.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

import numpy as np

Emit = Callable[[str, np.ndarray], None]
Naming = Callable[[str], "str | None"]  # tap reference name → Keras layer name


class LayerReference(Protocol):
    description: str

    def locate(self, names: Sequence[str]) -> dict[str, str]:
        """Tap reference name → this reference's own tensor name, for those it exposes."""

    def stream(self, batch: np.ndarray, wanted: Collection[str], emit: Emit) -> None:
        """Run on an NHWC batch, calling `emit(own name, array)` as each wanted tensor exists."""


class KerasLayers:
    """A Keras functional model run layer by layer; a tap reads one layer's output."""

    def __init__(self, model: Any, naming: Naming | None = None) -> None:
        self.model = model
        self.naming = naming or (lambda name: name)
        self.description = f"Keras model {model.name}"
        self._layers = {layer.name for layer in model.layers}

    def locate(self, names: Sequence[str]) -> dict[str, str]:
        found = {name: self.naming(name) for name in names}
        return {name: layer for name, layer in found.items() if layer in self._layers}

    def stream(self, batch: np.ndarray, wanted: Collection[str], emit: Emit) -> None:
        import tensorflow as tf

        run = getattr(self.model, "_run_through_graph", None)
        if run is None:  # no layer-by-layer runner: one sub-model with every wanted output
            self._stream_submodel(batch, wanted, emit)
            return

        def operation_fn(op: Any) -> Callable:
            def call(*args: Any, **kwargs: Any) -> Any:
                if getattr(op, "_call_has_training_arg", False):
                    kwargs["training"] = False
                out = op(*args, **kwargs)
                if op.name in wanted:
                    emit(op.name, np.asarray(out))
                return out
            return call

        run([tf.convert_to_tensor(batch)], operation_fn=operation_fn)

    def _stream_submodel(self, batch: np.ndarray, wanted: Collection[str], emit: Emit) -> None:
        import keras

        names = [layer.name for layer in self.model.layers if layer.name in wanted]
        probe = keras.Model(self.model.inputs, [self.model.get_layer(n).output for n in names])
        for name, out in zip(names, probe(batch, training=False), strict=True):
            emit(name, np.asarray(out))


class TfliteLayers:
    """A `.tflite` run with every intermediate tensor kept, paired through Keras layer names.

    TFLite fuses conv + BN + ReLU into one op named after all of them (first the last
    layer's), so a tap pairs only where a tensor's first name part is its Keras layer.
    """

    def __init__(self, path: str | os.PathLike, naming: Naming | None = None) -> None:
        self.path = path
        self.naming = naming or (lambda name: name)
        self.description = f"TFLite interpreter on {os.path.basename(path)}"
        self.interpreter = _interpreter(path)
        self._tensors = _tensors_by_layer(self.interpreter)

    def locate(self, names: Sequence[str]) -> dict[str, str]:
        found = {name: self.naming(name) for name in names}
        return {name: layer for name, layer in found.items() if layer in self._tensors}

    def stream(self, batch: np.ndarray, wanted: Collection[str], emit: Emit) -> None:
        interp = self.interpreter
        inp = interp.get_input_details()[0]
        if tuple(inp["shape"]) != batch.shape:
            interp.resize_tensor_input(inp["index"], list(batch.shape))
            interp.allocate_tensors()
        interp.set_tensor(inp["index"], batch.astype(np.float32))
        interp.invoke()
        for layer, index in self._tensors.items():  # op order: execution order
            if layer in wanted:
                emit(layer, interp.get_tensor(index))


def _interpreter(path: str | os.PathLike) -> Any:
    from tf2torch.references import tflite_interpreter

    return tflite_interpreter(path, preserve_all=True)


def _tensors_by_layer(interpreter: Any) -> dict[str, int]:
    """Keras layer name → index of the tensor it ends, in op order.

    Names look like `functional_1/block_3_expand_relu_1/Relu6;functional_1/...`: the first
    part names the layer whose result the tensor is (Keras appends `_<n>` to call scopes).
    """
    names = {d["index"]: d["name"] for d in interpreter.get_tensor_details()}
    found: dict[str, int] = {}
    for op in interpreter._get_ops_details():
        for index in op["outputs"]:
            parts = names[index].split(";")[0].split("/")
            if len(parts) >= 2:
                found[re.sub(r"_\d+$", "", parts[1])] = index
    return found


# --- stand-in naming: slim tensor names ↔ Keras MobileNetV2 layers ------------------------

def standin_naming(model: Any, top_scope: str = "MobilenetV2") -> Naming:
    """Map the zoo taps' slim names onto the stand-in's Keras layers via its scope table.

    `S/Conv2D`, `S/depthwise` → the conv layer of scope S; `S/BatchNorm` → its BN layer;
    `S/output` → the last layer of scope S followed through its activation (and, for a
    block, its residual add); `logits` → the model's output layer.
    """
    from tf2torch.standin import _slim_scope

    layers = list(model.layers)
    by_scope = {}
    for layer in layers:
        scope = _slim_scope(layer.name)
        if scope is not None:
            by_scope[f"{top_scope}/{scope}"] = layer
    consumers = _consumers(layers)

    def naming(name: str) -> str | None:
        if name == "logits":
            return layers[-1].name
        scope, _, leaf = name.rpartition("/")
        if leaf in ("Conv2D", "depthwise"):
            layer = by_scope.get(scope)
            return layer.name if layer is not None and hasattr(layer, "kernel_size") else None
        if leaf == "BatchNorm":
            layer = by_scope.get(name)
            return layer.name if layer is not None else None
        if leaf == "output":
            inside = [layer for s, layer in by_scope.items() if s.startswith(scope + "/")]
            if not inside:
                return None
            follow = ("ReLU", "Activation") if scope in by_scope else ("ReLU", "Activation", "Add")
            return _chain_end(inside[-1], consumers, follow).name
        return None

    return naming


def _consumers(layers: list[Any]) -> dict[int, list[Any]]:
    """id(output KerasTensor) → layers reading it (public `layer.input` only)."""
    out: dict[int, list[Any]] = {}
    for layer in layers:
        try:
            inputs = layer.input
        except (AttributeError, ValueError):
            continue
        for tensor in inputs if isinstance(inputs, list | tuple) else [inputs]:
            out.setdefault(id(tensor), []).append(layer)
    return out


def _chain_end(layer: Any, consumers: dict[int, list[Any]], follow: tuple[str, ...]) -> Any:
    """Follow a layer's single consumer while it is one of `follow` (by class name)."""
    while True:
        after = consumers.get(id(layer.output), [])
        if len(after) != 1 or type(after[0]).__name__ not in follow:
            return layer
        layer = after[0]
