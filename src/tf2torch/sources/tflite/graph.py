"""TFLite subgraph → graph IR.

Each operator becomes one `Node`. Its TFLite inputs are sorted into three kinds, recorded
position by position in `attrs["operands"]` so converters see the op's own argument order:
- `"in:k"`: a computed tensor, the node's k-th input;
- `"w:ROLE"`: a float constant (weights), named in `node.weights[ROLE]`;
- `"v"`: a small integer constant (shape, axes, paddings...), its value in `attrs["values"]`;
- `"none"`: an optional input left out (index -1).
Constant fp16 weights behind a DEQUANTIZE are folded: the op disappears and its output is a
float32 constant. Ops whose outputs nothing uses are dropped (shape arithmetic a RESHAPE no
longer needs once its static shape is known).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tf2torch.errors import SourceError, UnsupportedError
from tf2torch.sources.ir import Graph, GraphInput, Node, WeightSpec
from tf2torch.sources.tflite.opcodes import ACTIVATIONS, NUMPY_DTYPES, PADDING
from tf2torch.sources.tflite.schema import TflModel, TflOperator, TflSubgraph, TflTensor
from tf2torch.sources.tflite.sparse import densify

Loader = Callable[[], np.ndarray]
ReadBuffer = Callable[[int, str, tuple[int, ...]], np.ndarray]

# Largest integer constant kept inline in the IR as an attribute.
_MAX_VALUE_ELEMENTS = 4096
# Role names of well-known weight inputs, by op and input position.
_ROLES = {
    "CONV_2D": {1: "filter", 2: "bias"},
    "DEPTHWISE_CONV_2D": {1: "filter", 2: "bias"},
    "FULLY_CONNECTED": {1: "filter", 2: "bias"},
    "TRANSPOSE_CONV": {1: "filter", 3: "bias"},
    "PRELU": {1: "alpha"},
}
# Float constants that are settings, not weights: kept as attribute values.
_FLOAT_VALUES = {("PADV2", 2)}
# Ops evaluated at read time when their input is a constant: sparse → dense, fp16 → fp32.
_FOLDED = {"DENSIFY", "DEQUANTIZE"}
_QUANTIZED_TYPES = {"INT8", "UINT8", "INT16", "INT4"}
_FLOAT_TYPES = {"FLOAT32", "FLOAT16"}


@dataclass
class Constants:
    """Constant tensors of a subgraph: index → (dtype after folding, shape, loader)."""

    entries: dict[int, tuple[str, tuple[int, ...], Loader]]

    def __contains__(self, index: int) -> bool:
        return index in self.entries

    def load(self, index: int) -> np.ndarray:
        return self.entries[index][2]()


def check_not_quantized(sub: TflSubgraph) -> None:
    """Refuse integer-quantized models, naming the quantized tensors."""
    found = [t for t in sub.tensors
             if t.quantization is not None and t.dtype in _QUANTIZED_TYPES]
    if found:
        dtypes = "/".join(sorted({t.dtype.lower() for t in found}))
        shown = ", ".join(t.name for t in found[:8])
        more = f", ... ({len(found)} in all)" if len(found) > 8 else ""
        raise UnsupportedError(
            f"quantized TFLite model ({dtypes}): tf2torch converts float32 and float16-weight "
            f"models only; quantized tensors: {shown}{more}"
        )


def find_constants(model: TflModel, sub: TflSubgraph, read: ReadBuffer) -> Constants:
    entries: dict[int, tuple[str, tuple[int, ...], Loader]] = {}
    inputs = set(sub.inputs)
    for t in sub.tensors:
        if t.index in inputs or t.is_variable or t.buffer == 0 or t.buffer >= len(model.buffers):
            continue
        if model.buffers[t.buffer].size == 0:
            continue
        entries[t.index] = (t.dtype, t.shape, _loader(read, model, t))
    for op in sub.operators:  # in order, so DENSIFY → DEQUANTIZE chains fold too
        if op.op not in _FOLDED or not op.inputs or op.inputs[0] not in entries:
            continue
        dtype, _, load = entries[op.inputs[0]]
        out = sub.tensors[op.outputs[0]]
        if op.op == "DENSIFY":
            entries[out.index] = (dtype, out.shape, load)
        elif dtype == "FLOAT16":
            entries[out.index] = ("FLOAT32", out.shape, _as_float32(load))
    return Constants(entries)


def _loader(read: ReadBuffer, model: TflModel, t: TflTensor) -> Loader:
    if t.sparsity is None:
        return lambda: read(t.buffer, t.dtype, t.shape)
    itemsize = np.dtype(NUMPY_DTYPES.get(t.dtype, "u1")).itemsize
    count = model.buffers[t.buffer].size // itemsize
    return lambda: densify(read(t.buffer, t.dtype, (count,)), t.sparsity, t.shape)


def _as_float32(load: Loader) -> Loader:
    return lambda: load().astype(np.float32)


def build_graph(model: TflModel, sub: TflSubgraph, constants: Constants, name: str) -> Graph:
    names = unique_names(sub)
    check_not_quantized(sub)
    ops = _live_operators(sub, constants)
    index_of = {n: i for i, n in enumerate(names)}
    nodes: list[Node] = []
    weights: dict[str, WeightSpec] = {}
    for op in ops:
        node = _node(op, sub, constants, names)
        for tensor in node.weights.values():
            _, shape, _ = constants.entries[index_of[tensor]]
            weights[tensor] = WeightSpec(tuple(shape), "float32")
        nodes.append(node)
    inputs = [GraphInput(names[i], _input_shape(sub.tensors[i]),
                         sub.tensors[i].dtype.lower()) for i in sub.inputs]
    outputs = [names[i] for i in sub.outputs]
    return Graph("tflite", name, inputs, outputs, output_names(model, sub, names), nodes,
                 weights, {"tflite_version": model.version, "description": model.description})


def unique_names(sub: TflSubgraph) -> list[str]:
    """Tensor names, made unique (TFLite does not require it) by appending `:index`."""
    seen: dict[str, int] = {}
    for t in sub.tensors:
        seen[t.name] = seen.get(t.name, 0) + 1
    return [t.name if seen[t.name] == 1 else f"{t.name}:{t.index}" for t in sub.tensors]


def _input_shape(t: TflTensor) -> tuple[int | None, ...]:
    dims = t.shape_signature[1:] if len(t.shape_signature) == len(t.shape) else t.shape[1:]
    return tuple(None if d < 0 else int(d) for d in dims)


def output_names(model: TflModel, sub: TflSubgraph, names: list[str]) -> list[str]:
    """Signature output names when the file has a signature for this subgraph, else tensors."""
    for sig in model.signatures:
        by_index = {i: n for n, i in sig.outputs.items()}
        if set(by_index) == set(sub.outputs) and len(by_index) == len(sub.outputs):
            return [by_index[i] for i in sub.outputs]
    return [names[i] for i in sub.outputs]


def _live_operators(sub: TflSubgraph, constants: Constants) -> list[TflOperator]:
    """Operators that feed an output, in file order; folded DEQUANTIZEs removed."""
    needed = set(sub.outputs)
    live: list[TflOperator] = []
    for op in reversed(sub.operators):
        if all(o in constants for o in op.outputs) or not needed.intersection(op.outputs):
            continue
        live.append(op)
        for pos, i in enumerate(op.inputs):
            if i >= 0 and i not in constants and _needs_tensor(op, pos):
                needed.add(i)
    return live[::-1]


def _needs_tensor(op: TflOperator, pos: int) -> bool:
    """False for a computed shape input that the converter replaces by the static shape."""
    return not ((op.op == "RESHAPE" and pos == 1) or (op.op == "TRANSPOSE_CONV" and pos == 0))


def _node(op: TflOperator, sub: TflSubgraph, constants: Constants, names: list[str]) -> Node:
    operands: list[str] = []
    values: dict[str, list] = {}
    inputs: list[str] = []
    weights: dict[str, str] = {}
    roles = _ROLES.get(op.op, {})
    for pos, index in enumerate(op.inputs):
        if index < 0:
            operands.append("none")
        elif index in constants and _is_value(op, pos, constants.entries[index]):
            operands.append("v")
            values[str(pos)] = np.asarray(constants.load(index)).tolist()
        elif index in constants:
            role = roles.get(pos, f"input{pos}")
            weights[role] = names[index]
            operands.append(f"w:{role}")
        elif not _needs_tensor(op, pos):
            operands.append("dynamic")
        else:
            operands.append(f"in:{len(inputs)}")
            inputs.append(names[index])
    attrs = dict(op.options)
    if "padding" in attrs:
        attrs["padding"] = PADDING.get(attrs["padding"], attrs["padding"])
    if "fused_activation_function" in attrs:
        attrs["activation"] = _fused_activation(op, attrs.pop("fused_activation_function"))
    attrs.update(operands=operands, values=values, tflite_version=op.version,
                 output_shapes=[list(_static_shape(sub.tensors[i])) for i in op.outputs],
                 output_dtypes=[sub.tensors[i].dtype.lower() for i in op.outputs])
    if op.custom_options is not None:
        attrs["custom_options"] = op.custom_options.hex()
    name = f"{op.op.lower()}_{op.index}"
    # TFLite versions mark quantized-kernel capabilities; float semantics live in the options
    # read above, so every version maps to the same converter (key version 1).
    return Node(name, op.op, name, tuple(inputs), tuple(names[i] for i in op.outputs), attrs,
                weights, 1)


# TFLite's float kernels apply a fused activation as a clamp range: TANH and SIGN_BIT give no
# range, so conv, transpose-conv and pooling kernels leave them unapplied, and the others
# refuse the model when preparing it (kernel_util CalculateActivationRange; checked against
# the interpreter in tests/test_tflite_ops.py).
_CLAMP_ONLY = {"tanh", "sign_bit"}
_IGNORES_UNCLAMPED = {"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "AVERAGE_POOL_2D",
                      "MAX_POOL_2D"}


def _fused_activation(op: TflOperator, code: int) -> str:
    name = f"{op.op.lower()}_{op.index}"
    if code not in ACTIVATIONS:
        raise SourceError(f"{name} ({op.op}): fused activation code {code} is not one TFLite "
                          f"defines (0-{max(ACTIVATIONS)}): a corrupt file?")
    activation = ACTIVATIONS[code]
    if activation not in _CLAMP_ONLY:
        return activation
    if op.op in _IGNORES_UNCLAMPED:
        return "linear"  # what TFLite's own kernels compute
    raise UnsupportedError(f"{name} ({op.op}): fused activation {activation.upper()}, which "
                           "TFLite's kernels for this op refuse; the file cannot run in TFLite")


def _is_value(op: TflOperator, pos: int, entry: tuple[str, tuple[int, ...], Loader]) -> bool:
    dtype, shape, _ = entry
    small = int(np.prod(shape, dtype=np.int64)) <= _MAX_VALUE_ELEMENTS
    if (op.op, pos) in _FLOAT_VALUES:
        return True
    return dtype not in _FLOAT_TYPES and small


def _static_shape(t: TflTensor) -> tuple[int, ...]:
    sig = t.shape_signature if len(t.shape_signature) == len(t.shape) else t.shape
    return tuple(-1 if s < 0 else d for s, d in zip(sig, t.shape, strict=True))
