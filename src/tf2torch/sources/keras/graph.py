"""Keras model config (Keras 2 or 3, Functional or Sequential) → graph IR.

Nested models are inlined: their layers become nodes named `<model>/<layer>`, and every call
of a nested model or shared layer reuses the same `module` key, so weights stay shared.
Nothing from the file is executed: `Lambda` layers and unknown classes only become nodes with
their class name, which the converter registry then reports as unsupported.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tf2torch.errors import SourceError
from tf2torch.sources.ir import Graph, GraphInput, Node, WeightSpec

MODEL_CLASSES = ("Functional", "Model", "Sequential")
# Config entries that only matter for training: left out of the IR to keep it small.
_TRAINING_KEYS = ("_initializer", "_regularizer", "_constraint")

LayerConfig = dict[str, Any]
History = tuple[str, int, int]


def layer_op(layer: LayerConfig) -> str:
    """The op name a layer is registered under: its class, `ops.<Class>` for Keras 3 ops
    (the activation operations, such as Mish, live beside the activations rather than in
    keras.src.ops), `<module>.<Class>` for classes defined outside Keras (never registered)."""
    cls = layer["class_name"]
    module = layer.get("module") or ""
    if module.startswith(("keras.src.ops", "keras.src.activations")):
        return f"ops.{cls}"
    if module and not module.startswith(("keras", "tf_keras")):
        return f"{module}.{cls}"
    return cls


def is_model(layer: LayerConfig) -> bool:
    return layer.get("class_name") in MODEL_CLASSES and "layers" in layer.get("config", {})


def layer_name(layer: LayerConfig) -> str:
    return layer.get("name") or layer["config"]["name"]


def _attrs(layer: LayerConfig) -> dict[str, Any]:
    config = layer.get("config", {})
    if not isinstance(config, dict):
        return {"value": config}
    return {k: v for k, v in config.items()
            if not k.endswith(_TRAINING_KEYS) and k not in ("dtype", "trainable")}


def _history_list(refs: Any) -> list[History]:
    """`input_layers`/`output_layers`: one [name, node, tensor] or a list of them."""
    if isinstance(refs, dict):
        refs = list(refs.values())
    if refs and isinstance(refs[0], str):
        refs = [refs]
    return [(r[0], int(r[1]), int(r[2])) for r in refs]


class _CallArgs:
    """The tensors of one call, in order, and its constant arguments as a template."""

    def __init__(self) -> None:
        self.tensors: list[History] = []

    def template(self, value: Any) -> Any:
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            name, node, index = value["config"]["keras_history"]
            self.tensors.append((name, int(node), int(index)))
            return {"tensor": len(self.tensors) - 1}
        if isinstance(value, list):
            return [self.template(v) for v in value]
        if isinstance(value, dict):
            return {k: self.template(v) for k, v in value.items()}
        return value


def _parse_call(call: Any) -> tuple[list[History], dict[str, Any]]:
    """One inbound node of a layer, in Keras 3 ({"args", "kwargs"}) or Keras 2 form."""
    if isinstance(call, dict):
        parsed = _CallArgs()
        args = parsed.template(call.get("args", []))
        kwargs = parsed.template(call.get("kwargs", {}))
        return parsed.tensors, {"call_args": args, "call_kwargs": kwargs}
    if call and isinstance(call[0], str):  # TF-op layers store one bare entry per call
        call = [call]
    tensors: list[History] = []
    kwargs: dict[str, Any] = {}
    for entry in call:
        tensors.append((entry[0], int(entry[1]), int(entry[2])))
        if len(entry) > 3 and isinstance(entry[3], dict):
            kwargs.update(entry[3])
    for key, value in kwargs.items():
        if _is_keras2_ref(value):  # a tensor passed by keyword, e.g. `y` of tf.math.add
            tensors.append((value[0], int(value[1]), int(value[2])))
            kwargs[key] = {"tensor": len(tensors) - 1}
    return tensors, {"call_kwargs": kwargs}


def _is_keras2_ref(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)
            and all(isinstance(v, int) for v in value[1:]))


class _Builder:
    def __init__(self, weights: dict[str, WeightSpec], keras_major: int) -> None:
        self.keras_major = keras_major
        self.nodes: list[Node] = []
        self.weights_by_module: dict[str, dict[str, str]] = {}
        for name in weights:
            module, role = name.rsplit("/", 1)
            self.weights_by_module.setdefault(module, {})[role] = name
        self.calls: dict[str, int] = {}

    def emit(self, layer: LayerConfig, key: str, inputs: list[str], extra: dict) -> list[str]:
        n = self.calls.get(key, 0)
        self.calls[key] = n + 1
        name = key if n == 0 else f"{key}#{n}"
        outputs = (f"{name}:0",)
        attrs = _attrs(layer) | {k: v for k, v in extra.items() if v}
        self.nodes.append(Node(name, layer_op(layer), key, tuple(inputs), outputs, attrs,
                               self.weights_by_module.get(key, {})))
        return list(outputs)

    def layer_call(self, layer: LayerConfig, prefix: str, inputs: list[str],
                   extra: dict) -> list[str]:
        key = prefix + layer_name(layer)
        if is_model(layer):
            return self.model(layer, key + "/", inputs)
        return self.emit(layer, key, inputs, extra)

    def model(self, model: LayerConfig, prefix: str, inputs: list[str] | None) -> list[str]:
        if model["class_name"] == "Sequential":
            return self.sequential(model, prefix, inputs)
        return self.functional(model, prefix, inputs)

    def functional(self, model: LayerConfig, prefix: str, inputs: list[str] | None) -> list[str]:
        config = model["config"]
        layers = {layer_name(layer): layer for layer in config["layers"]}
        tensors: dict[History, str] = {}
        input_refs = _history_list(config["input_layers"])
        if inputs is not None and len(inputs) != len(input_refs):
            raise SourceError(f"{prefix}: called with {len(inputs)} inputs, "
                              f"expects {len(input_refs)}")
        for i, ref in enumerate(input_refs):
            tensors[ref] = inputs[i] if inputs is not None else ref[0]
        pending = [
            (name, index, call)
            for name, layer in layers.items() if layer["class_name"] != "InputLayer"
            for index, call in enumerate(layer.get("inbound_nodes", []),
                                         start=self.first_node_index(layer))
        ]
        while pending:
            waiting = []
            for name, index, call in pending:
                refs, extra = _parse_call(call)
                if not all(r in tensors for r in refs):
                    waiting.append((name, index, call))
                    continue
                outs = self.layer_call(layers[name], prefix, [tensors[r] for r in refs], extra)
                for t, out in enumerate(outs):
                    tensors[(name, index, t)] = out
            if len(waiting) == len(pending):
                names = ", ".join(sorted({p[0] for p in waiting})[:5])
                raise SourceError(f"model config: layers {names} use tensors no layer produces")
            pending = waiting
        outputs = []
        for ref in _history_list(config["output_layers"]):
            if ref not in tensors:
                raise SourceError(f"model config: output {ref[0]!r} is never computed")
            outputs.append(tensors[ref])
        return outputs

    def first_node_index(self, layer: LayerConfig) -> int:
        # Keras 2 counts a nested model's own construction as its node 0, so references to
        # its calls in the outer config start at 1 (tf_keras `_should_skip_first_node`).
        return 1 if self.keras_major < 3 and is_model(layer) else 0

    def sequential(self, model: LayerConfig, prefix: str, inputs: list[str] | None) -> list[str]:
        layers = [x for x in model["config"]["layers"] if x["class_name"] != "InputLayer"]
        if inputs is None:
            inputs = [_sequential_input(model).name]
        x = inputs
        for layer in layers:
            x = self.layer_call(layer, prefix, x, {})
        return x


def _input_shape(layer: LayerConfig) -> tuple[int | None, ...] | None:
    config = layer.get("config", {})
    for key in ("batch_shape", "batch_input_shape"):
        if config.get(key) is not None:
            return tuple(config[key][1:])
    return None


def _sequential_input(model: LayerConfig) -> GraphInput:
    layers = model["config"]["layers"]
    first = layers[0]
    shape = _input_shape(first)
    if shape is None and model["config"].get("build_input_shape"):
        shape = tuple(model["config"]["build_input_shape"][1:])
    if shape is None:
        raise SourceError("Sequential model has no input shape (it was never built)")
    name = layer_name(first) if first["class_name"] == "InputLayer" else "input"
    return GraphInput(name, shape, _dtype(first))


def _dtype(layer: LayerConfig) -> str:
    dtype = layer.get("config", {}).get("dtype", "float32")
    if isinstance(dtype, dict):
        dtype = dtype.get("config", {}).get("name", "float32")
    return dtype if isinstance(dtype, str) else "float32"


def _graph_inputs(model: LayerConfig) -> list[GraphInput]:
    if model["class_name"] == "Sequential":
        return [_sequential_input(model)]
    layers = {layer_name(layer): layer for layer in model["config"]["layers"]}
    inputs = []
    for name, _, _ in _history_list(model["config"]["input_layers"]):
        shape = _input_shape(layers[name])
        if shape is None:
            raise SourceError(f"input {name!r} has no shape in the model config")
        inputs.append(GraphInput(name, shape, _dtype(layers[name])))
    return inputs


def _output_names(model: LayerConfig, outputs: list[str]) -> list[str]:
    if model["class_name"] == "Sequential":
        return [layer_name(model["config"]["layers"][-1])]
    names: list[str] = []
    for name, _, _ in _history_list(model["config"]["output_layers"]):
        unique, n = name, 1
        while unique in names:
            unique, n = f"{name}_{n}", n + 1
        names.append(unique)
    return names


def build_graph(
    model: LayerConfig, weights: dict[str, WeightSpec], keras_version: str,
    extra_meta: dict[str, Any] | None = None,
) -> Graph:
    """The IR of a Keras model config; `weights` are the file's tensors by `<layer>/<role>`."""
    if not is_model(model):
        raise SourceError(f"top-level object is a {model.get('class_name')!r}, not a model")
    major = int(keras_version.split(".")[0]) if keras_version[:1].isdigit() else 3
    builder = _Builder(weights, major)
    inputs = _graph_inputs(model)
    outputs = builder.model(model, "", None)
    meta = {"keras_version": keras_version} | (extra_meta or {})
    return Graph("keras", layer_name(model), inputs, outputs, _output_names(model, outputs),
                 builder.nodes, dict(weights), meta)


def layer_classes(nodes: Iterable[Node]) -> dict[str, list[str]]:
    """Op → node names, for reports."""
    classes: dict[str, list[str]] = {}
    for node in nodes:
        classes.setdefault(node.op, []).append(node.name)
    return classes
