"""The simplified TF nodes → graph IR (`sources/ir.py`).

Each remaining node becomes one IR `Node` named by its TF name (so per-node verification
can fetch the same tensor from TensorFlow), placed under a module path without the
`StatefulPartitionedCall/` wrappers of inlined functions. Its inputs are recorded position
by position in `attrs["operands"]`, as the TFLite front-end does:
- `"in:k"`: a computed tensor, the node's k-th IR input;
- `"w:ROLE"`: a float weight, named in `node.weights[ROLE]` (ROLE = `input<position>`);
- `"v"`: a small constant (shape, axes, a scalar), its value in `attrs["values"][position]`,
  None where only known at run time (the batch size).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tf2torch.errors import UnsupportedError
from tf2torch.sources.ir import Graph, GraphInput, Node, WeightSpec
from tf2torch.sources.tensorflow.nodes import Ref, TfNode
from tf2torch.sources.tensorflow.shapes import Facts
from tf2torch.sources.tensorflow.simplify import Lazy, Simplified
from tf2torch.sources.tensorflow.values import dtype_name

FORMAT = "tensorflow"
_WRAPPER = re.compile(r"^(Stateful)?PartitionedCall(_\d+)?$")
_FLOAT = {1, 2, 14, 19}
# Ops with several outputs: how many (the converters return exactly that many).
# Other ops: as many as are read (an unsupported op is then listed, not refused here).
_OUTPUT_COUNT = {
    "Split": lambda n: n.attr("num_split"), "SplitV": lambda n: n.attr("num_split"),
    "Unpack": lambda n: n.attr("num"), "TopKV2": lambda n: 2,
    **dict.fromkeys(("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"), lambda n: 1),
}


def module_key(name: str) -> str:
    """`StatefulPartitionedCall/model/conv1/Conv2D` → `model/conv1/Conv2D`."""
    parts = [p for p in name.split("/") if not _WRAPPER.match(p)]
    return "/".join(parts) or name


def tensor_name(ref: Ref) -> str:
    return f"{ref[0]}:{ref[1]}"


class _Builder:
    def __init__(self, simplified: Simplified, input_names: Mapping[str, str]) -> None:
        self.s = simplified
        self.names = dict(input_names)  # placeholder node → graph input name
        self.weights: dict[str, Lazy] = {}
        self.constants: dict[Ref, Lazy] = {}

    def resolve(self, ref: Ref) -> Ref:
        while ref in self.s.alias:
            ref = self.s.alias[ref]
        return ref

    def name_of(self, ref: Ref) -> str:
        ref = self.resolve(ref)
        return self.names.get(ref[0], tensor_name(ref)) if ref[1] == 0 else tensor_name(ref)

    def facts(self, ref: Ref) -> Facts:
        return self.s.facts.get(self.resolve(ref)) or Facts(None)

    def constant(self, at: Ref, value: np.ndarray) -> Lazy:
        """A small float constant as a weight (one per tensor, however often it is read)."""
        if at not in self.constants:
            self.constants[at] = Lazy(at[0] if at[1] == 0 else tensor_name(at),
                                      lambda: value, tuple(value.shape), value.dtype)
        return self.constants[at]

    def weight(self, lazy: Lazy) -> str:
        name = lazy.name
        while name in self.weights and self.weights[name] is not lazy:
            name += "_"
        self.weights[name] = lazy
        return name

    def node(self, tf_node: TfNode) -> Node:
        operands: list[str] = []
        values: dict[str, Any] = {}
        weights: dict[str, str] = {}
        inputs: list[str] = []
        for pos, ref in enumerate(tf_node.inputs):
            facts = self.facts(ref)
            value = facts.value
            if value is None:
                operands.append(f"in:{len(inputs)}")
                inputs.append(self.name_of(ref))
            elif isinstance(value, Lazy) or (facts.dtype in _FLOAT and value.size > 1):
                if not isinstance(value, Lazy):
                    value = self.constant(self.resolve(ref), value)
                role = f"input{pos}"
                weights[role] = self.weight(value)
                operands.append(f"w:{role}")
            else:
                operands.append("v")
                values[str(pos)] = _plain(value)
        count = _OUTPUT_COUNT.get(tf_node.op, lambda n: n.outputs)(tf_node) or 1
        if tf_node.outputs > count:
            raise UnsupportedError(f"{tf_node.name} ({tf_node.op}): output "
                                   f"{tf_node.outputs - 1} is read, which is not converted")
        out_facts = [self.facts((tf_node.name, i)) for i in range(count)]
        attrs = {k: _plain(v) for k, v in tf_node.attrs.items()
                 if not k.startswith("_") and k != "value"}
        attrs.update(
            operands=operands, values=values,
            input_shapes=[_shape(self.facts(r).shape) for r in tf_node.inputs],
            input_dtypes=[dtype_name(self.facts(r).dtype) for r in tf_node.inputs],
            output_shapes=[_shape(f.shape) for f in out_facts],
            output_dtypes=[dtype_name(f.dtype) for f in out_facts])
        outputs = tuple(tensor_name((tf_node.name, i)) for i in range(count))
        return Node(tf_node.name, tf_node.op, module_key(tf_node.name), tuple(inputs),
                    outputs, attrs, weights, 1)


def _shape(shape: Any) -> list | None:
    return None if shape is None else list(shape)


def _plain(value: Any) -> Any:
    """A JSON-friendly form of an attribute or constant value."""
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def build_graph(simplified: Simplified, inputs: Sequence[tuple[str, GraphInput]],
                outputs: Sequence[tuple[Ref, str]], name: str,
                meta: dict[str, Any]) -> tuple[Graph, dict[str, Lazy]]:
    """The IR and the weights its nodes use (by IR weight name)."""
    builder = _Builder(simplified, {node: spec.name for node, spec in inputs})
    nodes = [builder.node(n) for n in simplified.nodes]
    output_tensors = []
    for ref, out_name in outputs:
        facts = builder.facts(ref)
        if facts.value is not None:
            raise UnsupportedError(f"{name}: output {out_name!r} is a constant (it does not "
                                   "depend on any input)")
        output_tensors.append(builder.name_of(ref))
    weights = {n: WeightSpec(tuple(int(d) for d in lazy.shape), "float32")
               for n, lazy in builder.weights.items()}
    graph = Graph(FORMAT, name, [spec for _, spec in inputs], output_tensors,
                  [n for _, n in outputs], nodes, weights, meta)
    return graph, builder.weights
