"""The graph IR every front-end (Keras, TFLite, ...) produces and `lower.py` consumes.

A `Graph` is a list of `Node`s in topological order. Tensors are named by strings; a node
reads `inputs` and writes `outputs`. `module` is the identity of the weights a node uses:
several nodes with the same `module` (a Keras layer shared between call sites) lower to one
PyTorch module called several times. `weights` maps a role ("kernel") to a source tensor
name. Shapes are in the source's own layout (channels-last for Keras and TFLite), batch
dimension excluded, `None` where unknown. The IR holds no weight data: it serialises to a
small JSON dict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Node:
    name: str
    op: str
    module: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, str] = field(default_factory=dict)
    version: int = 1


@dataclass(frozen=True)
class GraphInput:
    name: str
    shape: tuple[int | None, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class WeightSpec:
    """Shape and dtype of a weight, so modules can be rebuilt without the source file."""

    shape: tuple[int, ...]
    dtype: str


@dataclass
class Graph:
    """`format` selects the converters ("keras", "tflite"); `meta` holds what they may need
    (e.g. `keras_version`, which decides Keras 2 or 3 activation semantics)."""

    format: str
    name: str
    inputs: list[GraphInput]
    outputs: list[str]
    output_names: list[str]
    nodes: list[Node]
    weights: dict[str, WeightSpec] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "name": self.name,
            "inputs": [asdict(i) for i in self.inputs],
            "outputs": list(self.outputs),
            "output_names": list(self.output_names),
            "nodes": [asdict(n) for n in self.nodes],
            "weights": {k: asdict(v) for k, v in self.weights.items()},
            "meta": dict(self.meta),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Graph:
        nodes = [
            Node(n["name"], n["op"], n["module"], tuple(n["inputs"]), tuple(n["outputs"]),
                 n.get("attrs", {}), n.get("weights", {}), n.get("version", 1))
            for n in data["nodes"]
        ]
        inputs = [GraphInput(i["name"], tuple(i["shape"]), i.get("dtype", "float32"))
                  for i in data["inputs"]]
        weights = {k: WeightSpec(tuple(v["shape"]), v["dtype"])
                   for k, v in data.get("weights", {}).items()}
        return cls(data["format"], data["name"], inputs, list(data["outputs"]),
                   list(data["output_names"]), nodes, weights, dict(data.get("meta", {})))

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in self.nodes:
            counts[node.op] = counts.get(node.op, 0) + 1
        return counts
