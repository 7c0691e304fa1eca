"""TFLite subgraph → graph IR.

Each operator becomes one `Node`. Its TFLite inputs are sorted into three kinds, recorded
position by position in `attrs["operands"]` so converters see the op's own argument order:
- `"in:k"`: a computed tensor, the node's k-th input;
- `"w:ROLE"`: a float constant (weights), named in `node.weights[ROLE]`;
- `"v"`: a small integer constant (shape, axes, paddings...), its value in `attrs["values"]`;
- `"none"`: an optional input left out (index -1).
- `"state"`: a variable tensor (an LSTM's state), zero at every invocation.
Quantized constants are served dequantized (float32) and constant fp16 or quantized weights
behind a DEQUANTIZE are folded: the op disappears and its output is a float32 constant. The
parameters of every quantized tensor are kept in `meta["quantization"]` (see
`quantization.py`); quantized model inputs/outputs get a QUANTIZE/DEQUANTIZE node at the edge,
so the module's interface is real-valued. Ops whose outputs nothing uses are dropped (shape
arithmetic a RESHAPE no longer needs once its static shape is known).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tf2torch.errors import SourceError, UnsupportedError
from tf2torch.sources.ir import Graph, GraphInput, Node, WeightSpec
from tf2torch.sources.tflite import quantization
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
# Ops computing on values (sizes, masks, fills): their scalar float constants are literals,
# so what they compute from shapes alone is known while the module is built.
_VALUE_OPS = {"FILL", "BROADCAST_TO", "SELECT", "SELECT_V2", "EQUAL", "NOT_EQUAL", "LESS",
              "LESS_EQUAL", "GREATER", "GREATER_EQUAL", "ONE_HOT", "RANGE"}
# Ops evaluated at read time when their input is a constant: sparse → dense, fp16 → fp32,
# quantized → float32.
_FOLDED = {"DENSIFY", "DEQUANTIZE"}
_FLOAT_TYPES = {"FLOAT32", "FLOAT16"}


@dataclass
class Constants:
    """Constant tensors of a subgraph: index → (dtype after folding, shape, loader)."""

    entries: dict[int, tuple[str, tuple[int, ...], Loader]]

    def __contains__(self, index: int) -> bool:
        return index in self.entries

    def load(self, index: int) -> np.ndarray:
        return self.entries[index][2]()


def find_constants(model: TflModel, sub: TflSubgraph, read: ReadBuffer,
                   folded: dict[int, np.ndarray] | None = None) -> Constants:
    """Constant tensors: those with data in the file, and `folded` values (an unrolled
    loop's counters and the integer arithmetic on them, see `loops.py`)."""
    entries: dict[int, tuple[str, tuple[int, ...], Loader]] = {}
    for index, value in (folded or {}).items():
        array = np.asarray(value)
        entries[index] = (_TYPE_NAMES.get(array.dtype.kind + str(array.dtype.itemsize),
                                          "INT32"), tuple(array.shape), _fixed(array))
    inputs = set(sub.inputs)
    for t in sub.tensors:
        if t.index in entries:
            continue
        if t.index in inputs or t.is_variable or t.buffer == 0 or t.buffer >= len(model.buffers):
            continue
        if model.buffers[t.buffer].size == 0:
            continue
        load = _loader(read, model, t)
        if quantization.is_quantized(t):  # served dequantized; its parameters go to the IR
            entries[t.index] = ("FLOAT32", t.shape, _dequantized(load, t))
        else:
            entries[t.index] = (t.dtype, t.shape, load)
    for op in sub.operators:  # in order, so DENSIFY → DEQUANTIZE chains fold too
        if op.op not in _FOLDED or not op.inputs or op.inputs[0] not in entries:
            continue
        dtype, _, load = entries[op.inputs[0]]
        out = sub.tensors[op.outputs[0]]
        if op.op == "DENSIFY":
            entries[out.index] = (dtype, out.shape, load)
        elif dtype in _FLOAT_TYPES:
            entries[out.index] = ("FLOAT32", out.shape, _as_float32(load))
    return Constants(entries)


def _loader(read: ReadBuffer, model: TflModel, t: TflTensor) -> Loader:
    if t.sparsity is None:
        return lambda: read(t.buffer, t.dtype, t.shape)
    itemsize = np.dtype(NUMPY_DTYPES.get(t.dtype, "u1")).itemsize
    count = model.buffers[t.buffer].size // itemsize
    return lambda: densify(read(t.buffer, t.dtype, (count,)), t.sparsity, t.shape)


_TYPE_NAMES = {"i4": "INT32", "i8": "INT64", "b1": "BOOL", "f4": "FLOAT32"}


def _fixed(array: np.ndarray) -> Loader:
    return lambda: array


def small_integer_constants(model: TflModel, sub: TflSubgraph,
                            read: ReadBuffer) -> dict[int, np.ndarray]:
    """The values of the subgraph's small integer/boolean constants (for loop unrolling)."""
    found = {}
    for t in sub.tensors:
        if (t.dtype in ("INT32", "INT64", "BOOL") and 0 < t.buffer < len(model.buffers)
                and model.buffers[t.buffer].size and int(np.prod(t.shape)) <= _MAX_VALUE_ELEMENTS):
            found[t.index] = np.asarray(read(t.buffer, t.dtype, t.shape))
    return found


def _as_float32(load: Loader) -> Loader:
    return lambda: load().astype(np.float32, copy=False)


def _dequantized(load: Loader, t: TflTensor) -> Loader:
    return lambda: quantization.dequantize(load(), t.quantization, t.dtype)


def build_graph(model: TflModel, sub: TflSubgraph, constants: Constants, name: str,
                labels: list[str] | None = None) -> Graph:
    """`labels`: the output names (of the subgraph as the file has it, before unrolling)."""
    names = unique_names(sub)
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
    meta: dict = {"tflite_version": model.version, "description": model.description}
    kind = quantization.kind_of(sub, set(constants.entries))
    inputs = [GraphInput(names[i], _input_shape(sub.tensors[i]),
                         sub.tensors[i].dtype.lower()) for i in sub.inputs]
    outputs = [names[i] for i in sub.outputs]
    if kind is not None:
        used = {t for n in nodes for t in (*n.inputs, *n.outputs, *n.weights.values())}
        table = {names[t.index]: quantization.params(t) for t in sub.tensors
                 if quantization.is_quantized(t) and names[t.index] in used | set(outputs)}
        meta.update(quantized=kind, quantization=table)
        inputs, outputs, edges = _real_valued_edges(sub, names, inputs, outputs, table)
        nodes = edges[0] + nodes + edges[1]
    return Graph("tflite", name, inputs, outputs, labels or output_names(model, sub, names),
                 nodes, weights, meta)


def _real_valued_edges(sub: TflSubgraph, names: list[str], inputs: list[GraphInput],
                       outputs: list[str], table: dict) -> tuple:
    """A QUANTIZE after each quantized model input and a DEQUANTIZE before each quantized
    output: the module takes and gives real values (scale · (q − zero point))."""
    first: list[Node] = []
    last: list[Node] = []
    new_inputs = []
    for k, spec in enumerate(inputs):
        if spec.name not in table:
            new_inputs.append(spec)
            continue
        real = f"{spec.name}/real"
        new_inputs.append(GraphInput(real, spec.shape, "float32"))
        first.append(_edge_node(f"quantize_input_{k}", "QUANTIZE", real, spec.name,
                                sub.tensors[sub.inputs[k]], table[spec.name]["dtype"]))
    new_outputs = []
    for k, name in enumerate(outputs):
        if name not in table:
            new_outputs.append(name)
            continue
        real = f"{name}/real"
        new_outputs.append(real)
        last.append(_edge_node(f"dequantize_output_{k}", "DEQUANTIZE", name, real,
                               sub.tensors[sub.outputs[k]], "float32"))
    return new_inputs, new_outputs, (first, last)


def _edge_node(name: str, op: str, source: str, target: str, t: TflTensor, dtype: str) -> Node:
    attrs = {"operands": ["in:0"], "values": {}, "tflite_version": 1, "edge": True,
             "output_shapes": [list(_static_shape(t))], "output_dtypes": [dtype]}
    return Node(name, op, name, (source,), (target,), attrs, {}, 1)


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
            if (i >= 0 and i not in constants and not sub.tensors[i].is_variable
                    and _needs_tensor(op, pos, sub)):
                needed.add(i)
    return live[::-1]


def _needs_tensor(op: TflOperator, pos: int, sub: TflSubgraph) -> bool:
    """False for a computed shape input that the converter replaces by the static shape:
    TRANSPOSE_CONV's, and RESHAPE's unless its output has several unknown sizes."""
    if op.op == "TRANSPOSE_CONV":
        return pos != 0
    if op.op == "RESHAPE" and pos == 1:
        return sum(d < 0 for d in _static_shape(sub.tensors[op.outputs[0]])) > 1
    return True


def _node(op: TflOperator, sub: TflSubgraph, constants: Constants, names: list[str]) -> Node:
    operands: list[str] = []
    values: dict[str, list] = {}
    value_dtypes: dict[str, str] = {}
    inputs: list[str] = []
    weights: dict[str, str] = {}
    roles = _ROLES.get(op.op, {})
    for pos, index in enumerate(op.inputs):
        if index < 0:
            operands.append("none")
        elif sub.tensors[index].is_variable:
            operands.append("state")
        elif index in constants and _is_value(op, pos, constants.entries[index]):
            operands.append("v")
            values[str(pos)] = np.asarray(constants.load(index)).tolist()
            value_dtypes[str(pos)] = constants.entries[index][0].lower()
        elif index in constants:
            role = roles.get(pos, f"input{pos}")
            weights[role] = names[index]
            operands.append(f"w:{role}")
        elif not _needs_tensor(op, pos, sub):
            operands.append("dynamic")
        else:
            operands.append(f"in:{len(inputs)}")
            inputs.append(names[index])
    attrs = dict(op.options)
    if "padding" in attrs:
        attrs["padding"] = PADDING.get(attrs["padding"], attrs["padding"])
    if "fused_activation_function" in attrs:
        attrs["activation"] = _fused_activation(op, attrs.pop("fused_activation_function"))
    attrs.update(operands=operands, values=values, value_dtypes=value_dtypes,
                 tflite_version=op.version,
                 output_shapes=[list(_static_shape(sub.tensors[i])) for i in op.outputs],
                 output_dtypes=[sub.tensors[i].dtype.lower() for i in op.outputs])
    if op.custom_options is not None:
        attrs["custom_options"] = op.custom_options.hex()
    if op.unrolled:
        attrs["unrolled"] = True
    name = f"{op.op.lower()}_{op.index}"
    # TFLite versions mark quantized-kernel capabilities; float semantics live in the options
    # read above, so every version maps to the same converter (key version 1).
    return Node(name, op.op, op.shared or name, tuple(inputs),
                tuple(names[i] for i in op.outputs), attrs, weights, 1)


# TFLite's float kernels apply a fused activation as a clamp range: TANH and SIGN_BIT give no
# range, so conv, transpose-conv and pooling kernels leave them unapplied, and the others
# refuse the model when preparing it (kernel_util CalculateActivationRange; checked against
# the interpreter in tests/test_tflite_ops.py).
_CLAMP_ONLY = {"tanh", "sign_bit"}
_IGNORES_UNCLAMPED = {"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "AVERAGE_POOL_2D",
                      "MAX_POOL_2D"}
# Recurrent ops apply their "fused" activation inside the cell (TFLite's
# ApplyActivationToVector takes every code), so TANH there is the cell's own activation.
_CELL_ACTIVATION = {"LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "RNN",
                    "UNIDIRECTIONAL_SEQUENCE_RNN", "BIDIRECTIONAL_SEQUENCE_RNN", "SVDF"}


def _fused_activation(op: TflOperator, code: int) -> str:
    name = f"{op.op.lower()}_{op.index}"
    if code not in ACTIVATIONS:
        raise SourceError(f"{name} ({op.op}): fused activation code {code} is not one TFLite "
                          f"defines (0-{max(ACTIVATIONS)}): a corrupt file?")
    activation = ACTIVATIONS[code]
    if activation not in _CLAMP_ONLY or op.op in _CELL_ACTIVATION:
        return activation
    if op.op in _IGNORES_UNCLAMPED:
        return "linear"  # what TFLite's own kernels compute
    raise UnsupportedError(f"{name} ({op.op}): fused activation {activation.upper()}, which "
                           "TFLite's kernels for this op refuse; the file cannot run in TFLite")


def _is_value(op: TflOperator, pos: int, entry: tuple[str, tuple[int, ...], Loader]) -> bool:
    dtype, shape, _ = entry
    small = int(np.prod(shape, dtype=np.int64)) <= _MAX_VALUE_ELEMENTS
    if (op.op, pos) in _FLOAT_VALUES or (op.op in _VALUE_OPS and small and not shape):
        return True
    return dtype not in _FLOAT_TYPES and small


def _static_shape(t: TflTensor) -> tuple[int, ...]:
    sig = t.shape_signature if len(t.shape_signature) == len(t.shape) else t.shape
    return tuple(-1 if s < 0 else d for s, d in zip(sig, t.shape, strict=True))
