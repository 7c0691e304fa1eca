"""Which checkpoint entry holds each variable of a graph.

- TF2 SavedModel: a signature's call node passes the variables it captured as its last
  inputs, in the order of its concrete function's `bound_inputs` (object graph node ids);
  the checkpoint's own object graph (`_CHECKPOINTABLE_OBJECT_GRAPH`, same node ids) gives
  each variable's checkpoint key.
- TF1 graphs (meta graphs, TF1 SavedModels): the saver's restore op names the keys it reads
  (`save/RestoreV2/tensor_names`) and which variable each one is assigned to; without a
  saver, a variable's key is its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tf2torch.errors import SourceError
from tf2torch.sources.model import TensorStore
from tf2torch.sources.tensorflow.nodes import TfNode
from tf2torch.sources.tensorflow.protos import parse
from tf2torch.sources.tensorflow.simplify import Lazy
from tf2torch.sources.tensorflow.values import tensor_value

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
VARIABLE_OPS = {"VarHandleOp", "VariableV2", "Variable"}


def object_graph_keys(store: TensorStore, saved_objects: Any, call: TfNode,
                      concrete: Mapping[str, Any], path: Path) -> dict[str, tuple[str, str]]:
    """Node name → (checkpoint key, variable name) for the variables a signature's call
    node captures."""
    function = call.attr("f")
    bound = list(concrete[function].bound_inputs) if function in concrete else []
    if not bound:
        return {}
    if OBJECT_GRAPH_KEY not in store:
        raise SourceError(f"{path}: the variables bundle has no object graph "
                          f"({OBJECT_GRAPH_KEY}); cannot tell which tensor is which variable")
    graph = parse("tensorflow.TrackableObjectGraph", store[OBJECT_GRAPH_KEY].item(), path)
    captured = call.inputs[len(call.inputs) - len(bound):]
    paths = _object_paths(saved_objects)
    found: dict[str, tuple[str, str]] = {}
    for (node_name, _), node_id in zip(captured, bound, strict=True):
        if node_id >= len(graph.nodes):
            raise SourceError(f"{path}: object {node_id} is not in the checkpoint's graph")
        keys = [a.checkpoint_key for a in graph.nodes[node_id].attributes
                if a.name == "VARIABLE_VALUE"]
        if not keys:
            continue  # a captured non-variable (a table, a constant)
        saved = saved_objects.nodes[node_id] if node_id < len(saved_objects.nodes) else None
        name = saved.variable.name if saved is not None and saved.HasField("variable") \
            else node_name
        found[node_name] = (keys[0], name, paths.get(node_id, node_name))
    counts: dict[str, int] = {}
    for _, name, _ in found.values():
        counts[name] = counts.get(name, 0) + 1
    # a variable's own name where it is unique (Keras: "conv2d/kernel"), else its path in
    # the object graph (a tf.Module's unnamed variables: "dense", "offset")
    return {node: (key, name if counts[name] == 1 else object_path)
            for node, (key, name, object_path) in found.items()}


def _object_paths(saved_objects: Any) -> dict[int, str]:
    """Object graph node id → its first path from the root ("encoder/dense/kernel")."""
    paths: dict[int, str] = {0: ""}
    queue = [0]
    while queue:
        node_id = queue.pop(0)
        for child in saved_objects.nodes[node_id].children:
            if child.node_id not in paths:
                paths[child.node_id] = f"{paths[node_id]}/{child.local_name}".lstrip("/")
                queue.append(child.node_id)
    return paths


def saver_keys(nodes: Mapping[str, TfNode]) -> dict[str, tuple[str, str]]:
    """Variable node → (checkpoint key, name), from the saver's restore ops or the names."""
    found: dict[str, tuple[str, str]] = {}
    restores = {n.name: n for n in nodes.values() if n.op in ("RestoreV2", "Restore")}
    for node in nodes.values():
        if node.op not in ("Assign", "AssignVariableOp") or len(node.inputs) < 2:
            continue
        (variable, _), (producer, index) = node.inputs[0], _through_identities(
            nodes, node.inputs[1])
        if producer not in restores or variable not in nodes:
            continue
        names_ref = restores[producer].inputs[1][0]
        names = nodes.get(names_ref)
        if names is None or names.op != "Const":
            continue
        keys = tensor_value(names.attr("value")).reshape(-1)
        found[variable] = (keys[index].decode(), variable)
    for node in nodes.values():
        if node.op in VARIABLE_OPS and node.name not in found:
            key = node.attr("shared_name") or node.name
            found[node.name] = (key, node.name)
    return found


def _through_identities(nodes: Mapping[str, TfNode], ref: tuple[str, int]) -> tuple[str, int]:
    while ref[0] in nodes and nodes[ref[0]].op == "Identity" and nodes[ref[0]].inputs:
        ref = nodes[ref[0]].inputs[0]
    return ref


def variable_weights(keys: Mapping[str, tuple[str, str]], store: TensorStore | None,
                     path: Path) -> dict[str, Lazy]:
    """Variable node name → its weight, named by the variable's own name (unique)."""
    weights: dict[str, Lazy] = {}
    used: dict[str, str] = {}
    for node_name, (key, name) in keys.items():
        if store is None:
            raise SourceError(f"{path}: no variables bundle (variables/variables.index or the "
                              f"checkpoint beside the graph), which variable {name!r} needs")
        if key not in store:
            raise SourceError(f"{path}: variable {name!r} (checkpoint key {key!r}) is missing "
                              "from the variables bundle")
        info = store.info(key)
        unique = name
        while used.get(unique, key) != key:
            unique += "_"
        used[unique] = key
        weights[node_name] = Lazy(unique, _loader(store, key), tuple(info.shape),
                                  np.dtype(info.dtype))
    return weights


def _loader(store: TensorStore, key: str):
    return lambda: store[key]
