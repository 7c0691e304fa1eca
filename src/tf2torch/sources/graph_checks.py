"""Checks every graph IR passes before it is lowered, whatever format it came from.

The front-ends (Keras, TFLite, TF graphs) build a `Graph` from what a file declares; this
checks it as a graph: it has inputs and outputs, every node reads only tensors that exist
before it runs (so no self-loops or cycles reach the lowering), no tensor is written twice,
every output is computed, and declared input and weight sizes are within the budgets of
`util/budgets.py`. The first problem is one `SourceError` naming the file and the node.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tf2torch.errors import SourceError
from tf2torch.sources.ir import Graph
from tf2torch.util import budgets


def validate_graph(graph: Graph, path: Path | str) -> None:
    if not graph.inputs:
        raise SourceError(f"{path}: the model has no inputs")
    if not graph.outputs:
        raise SourceError(f"{path}: the model has no outputs")
    _check_names(graph, path)
    written: dict[str, str] = {}
    for spec in graph.inputs:
        where = f"{path}: input {spec.name!r}"
        if any(d is not None and (not isinstance(d, int) or d < 1) for d in spec.shape):
            raise SourceError(f"{where}: shape {list(spec.shape)} holds a size that is not a "
                              "positive integer")
        budgets.check_shape(spec.shape, where)
        written[spec.name] = "<input>"
    total = 0
    for name, weight in graph.weights.items():
        count = budgets.check_shape(weight.shape, f"{path}: weight {name!r}")
        total += count * _itemsize(weight.dtype)
    budgets.check(budgets.WEIGHT_BYTES, total, str(path))
    for node in graph.nodes:
        for tensor in node.inputs:
            if tensor in written:
                continue
            own = tensor in node.outputs
            later = any(tensor in other.outputs for other in graph.nodes)
            why = ("reads its own output: a cycle" if own else
                   "is read before the node computing it: a cycle or nodes out of order"
                   if later else "is no input and no node's output")
            raise SourceError(f"{path}: node {node.name!r} ({node.op}): tensor {tensor!r} {why}")
        for tensor in node.outputs:
            if tensor in written:
                raise SourceError(f"{path}: node {node.name!r} ({node.op}) writes "
                                  f"{tensor!r}, which {written[tensor]} writes too")
            written[tensor] = f"node {node.name!r}"
    for tensor in graph.outputs:
        if tensor not in written:
            raise SourceError(f"{path}: output {tensor!r} is computed by no node")


def _check_names(graph: Graph, path: Path | str) -> None:
    """Every name a string (they become Python identifiers and dictionary keys)."""
    names = [graph.name, *(i.name for i in graph.inputs), *graph.outputs, *graph.output_names,
             *graph.weights]
    for node in graph.nodes:
        names += [node.name, node.op, node.module, *node.inputs, *node.outputs,
                  *node.weights.values()]
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise SourceError(f"{path}: a name in the model is {str(bad[0])[:40]!r}, not a text")


def _itemsize(dtype: str) -> int:
    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        return 4
