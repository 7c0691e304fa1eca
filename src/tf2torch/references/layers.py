"""Originals with their intermediate tensors exposed: a Keras model, a frozen graph, a TFLite file.

A `LayerReference` locates the tensors it can expose for the taps' reference names and
streams them, in execution order, into a callback. Both import TensorFlow lazily.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

import numpy as np

from tf2torch.errors import SourceError
from tf2torch.references.scopes import GraphNode, ScopeNames, topological

Emit = Callable[[str, np.ndarray], None]
Naming = Callable[[str], "str | None"]  # tap reference name → Keras layer name


class LayerReference(Protocol):
    description: str

    def locate(self, names: Sequence[str]) -> dict[str, str]:
        """Tap reference name → this reference's own tensor name, for those it exposes."""

    def stream(self, batch: np.ndarray, wanted: Collection[str], emit: Emit) -> None:
        """Run on an NHWC batch, calling `emit(own name, array)` as each wanted tensor exists."""

    def label(self, own: str) -> str:
        """How the report names one of this reference's tensors."""


class KerasLayers:
    """A Keras functional model run layer by layer; a tap reads one layer's output."""

    def __init__(self, model: Any, naming: Naming | None = None) -> None:
        self.model = model
        self.naming = naming or (lambda name: name)
        self.description = f"Keras model {model.name}"
        self._layers = {layer.name for layer in model.layers}

    def label(self, own: str) -> str:
        return own

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


class FrozenGraphLayers:
    """A frozen slim GraphDef (a release's `*_frozen.pb`), every tap read by slim node name.

    One run fetches every wanted tensor (a TF1 graph cannot hand them over one by one), then
    emits them in execution order.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        from tf2torch.references.tensorflow import load_graph_def

        self.path = path
        self.description = f"TensorFlow frozen graph {os.path.basename(path)}"
        self.graph_def = load_graph_def(path)
        self.names = ScopeNames(*_graph_nodes(self.graph_def))
        placeholders = [n.name for n in self.graph_def.node if n.op == "Placeholder"]
        if len(placeholders) != 1:
            raise SourceError(f"{path}: per-layer comparison needs one Placeholder input, "
                              f"found {len(placeholders)}")
        self._feed = f"{placeholders[0]}:0"

    def label(self, own: str) -> str:
        return own.removesuffix(":0")

    def locate(self, names: Sequence[str]) -> dict[str, str]:
        return self.names.locate(names)

    def stream(self, batch: np.ndarray, wanted: Collection[str], emit: Emit) -> None:
        import tensorflow as tf

        from tf2torch.references.tensorflow import frozen_function

        keys = [key for key in self.names.order() if key in wanted]
        graph_fn = frozen_function(tf, self.graph_def, [self._feed], keys)
        for key, value in zip(keys, graph_fn([batch]), strict=True):
            emit(key, np.asarray(value))


def _graph_nodes(graph_def: Any) -> tuple[list[GraphNode], str | None]:
    """Every computing node's first output, in topological order; the last softmax's input."""
    inputs = {n.name: [i.lstrip("^").split(":")[0] for i in n.input] for n in graph_def.node}
    readers: dict[str, set[str]] = {}
    for name, parents in inputs.items():
        for parent in parents:
            readers.setdefault(parent, set()).add(name)
    ops = {n.name: n.op for n in graph_def.node}
    order = topological([n.name for n in graph_def.node], inputs)
    nodes = [GraphNode(name, f"{name}:0", frozenset(readers.get(name, ())))
             for name in order if ops[name] not in _NOT_COMPUTED]
    softmax = [n for n in graph_def.node if n.op == "Softmax"]
    logits = softmax[-1].input[0] if softmax else None
    return nodes, (logits if logits is None or ":" in logits else f"{logits}:0")


_NOT_COMPUTED = {"Const", "Placeholder", "NoOp"}


class TfliteLayers:
    """A `.tflite` run with every intermediate tensor kept, taps read by slim tensor name.

    TensorFlow's converter fuses conv + BN + ReLU into one op whose tensor is named after all
    three nodes, last first, so only scope results (`S/output`, some BNs) pair.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = path
        self.description = f"TFLite interpreter on {os.path.basename(path)}"
        self.interpreter = _interpreter(path)
        self.names = ScopeNames(*_tflite_nodes(self.interpreter))
        self._labels = {node.key: node.name for node in self.names.nodes}

    def label(self, own: str) -> str:
        return self._labels.get(own, own)

    def locate(self, names: Sequence[str]) -> dict[str, str]:
        return self.names.locate(names)

    def stream(self, batch: np.ndarray, wanted: Collection[str], emit: Emit) -> None:
        interp = self.interpreter
        inp = interp.get_input_details()[0]
        if tuple(inp["shape"]) != batch.shape:
            interp.resize_tensor_input(inp["index"], list(batch.shape))
            interp.allocate_tensors()
        interp.set_tensor(inp["index"], batch.astype(np.float32))
        interp.invoke()
        for key in self.names.order():  # op order: execution order
            if key in wanted:
                emit(key, interp.get_tensor(int(key)))


def _interpreter(path: str | os.PathLike) -> Any:
    from tf2torch.references.tensorflow import tflite_interpreter

    return tflite_interpreter(path, preserve_all=True)


def _tflite_nodes(interpreter: Any) -> tuple[list[GraphNode], str | None]:
    """Every op output as a node named by its tensor's first name part; the softmax input."""
    names = {d["index"]: d["name"].split(";")[0] for d in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()
    readers: dict[int, set[str]] = {}
    for op in ops:
        for index in op["inputs"]:
            readers.setdefault(index, set()).update(names[o] for o in op["outputs"])
    nodes = [GraphNode(names[index], str(index), frozenset(readers.get(index, ())))
             for op in ops for index in op["outputs"]]
    softmax = [op for op in ops if op["op_name"] == "SOFTMAX"]
    return nodes, (str(softmax[-1]["inputs"][0]) if softmax else None)


def layer_reference(kind: str, path: str | os.PathLike) -> LayerReference:
    """The layer reference of a runnable original, in this process (the reference worker's
    side of `isolated_keras.IsolatedLayers`): a frozen graph, a Keras file, or the demo's
    Keras stand-in (its layers named after slim's scopes)."""
    from tf2torch.references.keras import load_keras_model

    if kind == "frozen_pb":
        return FrozenGraphLayers(path)
    model = load_keras_model(path)
    if kind == "keras_standin":
        return KerasLayers(model, standin_naming(model))
    if kind == "keras":
        return KerasLayers(model)
    raise ValueError(f"no layer reference of kind {kind!r}")


# --- stand-in naming: slim tensor names ↔ Keras MobileNetV2 layers ------------------------

def standin_naming(model: Any, top_scope: str = "MobilenetV2") -> Naming:
    """Map the zoo taps' slim names onto the stand-in's Keras layers via its scope table.

    `S/Conv2D`, `S/depthwise` → the conv layer of scope S; `S/BatchNorm` → its BN layer;
    `S/output` → the last layer of scope S followed through its activation (and, for a
    block, its residual add); `logits` → the model's output layer.
    """
    from tf2torch.references.standin import _slim_scope

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
