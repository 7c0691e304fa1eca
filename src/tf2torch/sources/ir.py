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

from tf2torch.errors import SourceError


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
        """The graph `to_json` wrote; a document of another structure is a `SourceError`."""
        try:
            return cls._from_json(data)
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise SourceError(f"graph IR of another structure than tf2torch writes "
                              f"({type(err).__name__}: {err})") from None

    @classmethod
    def _from_json(cls, data: dict[str, Any]) -> Graph:
        nodes = [
            Node(_text(n["name"]), _text(n["op"]), _text(n["module"]), _texts(n["inputs"]),
                 _texts(n["outputs"]), _mapping(n.get("attrs", {})),
                 {_text(k): _text(v) for k, v in _mapping(n.get("weights", {})).items()},
                 int(n.get("version", 1)))
            for n in _items(data["nodes"])
        ]
        inputs = [GraphInput(_text(i["name"]), _shape(i["shape"], True),
                             _text(i.get("dtype", "float32"))) for i in _items(data["inputs"])]
        weights = {_text(k): WeightSpec(_shape(v["shape"], False), _text(v["dtype"]))
                   for k, v in _mapping(data.get("weights", {})).items()}
        return cls(_text(data["format"]), _text(data["name"]), inputs,
                   list(_texts(data["outputs"])), list(_texts(data["output_names"])), nodes,
                   weights, dict(_mapping(data.get("meta", {}))))

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in self.nodes:
            counts[node.op] = counts.get(node.op, 0) + 1
        return counts


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{str(value)[:40]!r} where a name belongs")
    return value


def _items(value: Any) -> list | tuple:
    if not isinstance(value, list | tuple):
        raise TypeError(f"{str(value)[:40]!r} where a list belongs")
    return value


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(_text(v) for v in _items(value))


def _mapping(value: Any) -> dict:
    if not isinstance(value, dict):
        raise TypeError(f"{str(value)[:40]!r} where a mapping belongs")
    return value


def _shape(value: Any, unknown: bool) -> tuple:
    sizes = tuple(_items(value))
    if not all((d is None and unknown) or (isinstance(d, int) and not isinstance(d, bool))
               for d in sizes):
        raise TypeError(f"shape {str(value)[:40]} is not a list of sizes")
    return sizes
