"""A graph's inputs and outputs: a signature's (SavedModels, meta graphs with signatures),
else a GraphDef's placeholders and the results nothing reads."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tf2torch.errors import SourceError
from tf2torch.sources.checkpoint.reader import release_meta
from tf2torch.sources.ir import GraphInput
from tf2torch.sources.tensorflow.nodes import Ref, TfNode, parse_graph_ref, topological
from tf2torch.sources.tensorflow.shapes import Facts
from tf2torch.sources.tensorflow.values import RESOURCE, STRING, VARIANT, dtype_name, shape_of

Inputs = dict[str, tuple[GraphInput, Facts]]  # placeholder node → (IR input, its facts)
Outputs = list[tuple[Ref, str]]  # (tensor, output name)

# Ops whose results are never a model output.
_NOT_OUTPUTS = {"NoOp", "Const", "Placeholder", "PlaceholderWithDefault", "VariableV2",
                "VarHandleOp", "Assign", "AssignVariableOp", "AssignAdd", "AssignSub",
                "SaveV2", "RestoreV2", "Save", "Restore", "MergeV2Checkpoints",
                "VarIsInitializedOp", "IsVariableInitialized", "ShardedFilename",
                "StringJoin", "Assert", "Print", "PrintV2"}


def choose_signature(signatures: Mapping[str, Any], wanted: str | None, source: str) -> str:
    names = sorted(signatures)
    if not names:
        raise SourceError(f"{source}: the SavedModel has no signature with outputs to convert")
    if wanted is not None:
        if wanted not in signatures:
            raise SourceError(f"{source}: no signature {wanted!r}; it has "
                              f"{', '.join(names)}")
        return wanted
    if "serving_default" in signatures:
        return "serving_default"
    if len(names) == 1:
        return names[0]
    raise SourceError(f"{source}: no 'serving_default' signature; choose one with "
                      f"--signature ({', '.join(names)})")


def _input(name: str, shape: tuple | None, dtype: int, source: str) -> tuple[GraphInput, Facts]:
    if shape is None or len(shape) == 0:
        raise SourceError(f"{source}: input {name!r} has no batch dimension (rank "
                          f"{'unknown' if shape is None else 0}); tf2torch converts batched "
                          "models")
    return GraphInput(name, tuple(shape[1:]), dtype_name(dtype)), Facts((None, *shape[1:]),
                                                                         dtype)


def signature_endpoints(signature: Any, main: Mapping[str, TfNode], source: str,
                        ) -> tuple[Inputs, Outputs]:
    """Inputs and outputs ordered by key, as TensorFlow orders a signature's dicts."""
    inputs: Inputs = {}
    for key, info in sorted(signature.inputs.items()):
        node, _ = parse_graph_ref(info.name)
        if node not in main:
            raise SourceError(f"{source}: signature input {key!r} names {info.name}, which "
                              "the graph does not define")
        inputs[node] = _input(key, shape_of(info.tensor_shape), info.dtype, source)
    outputs: Outputs = []
    for key, info in sorted(signature.outputs.items()):
        ref = parse_graph_ref(info.name)
        if ref[0] not in main:
            raise SourceError(f"{source}: signature output {key!r} names {info.name}, which "
                              "the graph does not define")
        outputs.append((ref, key))
    return inputs, outputs


# Results a graph may hand out (float, half, int32, int64, bool: scores, indices, masks);
# shape queries left unread are bookkeeping, not results.
_RESULT_TYPES = (1, 19, 3, 9, 10)
_SHAPE_OPS = {"Shape", "ShapeN", "Size", "Rank"}


def _result_type(node: TfNode) -> int:
    """The DataType of a node's first output, from the attribute that holds it."""
    for name in ("output_type", "DstT", "out_type", "T", "dtype"):
        value = node.attr(name, None)
        if value is not None:
            return value
    return 1


def graph_endpoints(main: Mapping[str, TfNode], source: str) -> tuple[Inputs, Outputs]:
    """Placeholders (numbers, not strings) in, and out every numeric result that depends on
    one and that no node reads, in graph order."""
    placeholders = [n for n in main.values() if n.op == "Placeholder"
                    and n.attr("dtype") not in (STRING, RESOURCE, VARIANT)]
    if not placeholders:
        raise SourceError(f"{source}: the graph has no Placeholder input")
    read = {ref for node in main.values() for ref in node.inputs}
    read_nodes = {name for name, _ in read}
    fed = {p.name for p in placeholders}
    outputs: Outputs = []
    for node in main.values():
        if node.name in read_nodes or node.op in _NOT_OUTPUTS or node.name.startswith("save/"):
            continue
        if _result_type(node) not in _RESULT_TYPES or node.op in _SHAPE_OPS:
            continue
        ancestors = {n.name for n in topological(main, [node.name])}
        if ancestors & fed:
            outputs.append(((node.name, 0), node.name))
    if not outputs:
        raise SourceError(f"{source}: found no output (a numeric result that depends on a "
                          "placeholder and that no node reads)")
    used = {n.name for ref, _ in outputs for n in topological(main, [ref[0]])}
    inputs: Inputs = {}
    for p in placeholders:
        if p.name in used:
            inputs[p.name] = _input(p.name, p.attr("shape"), p.attr("dtype", 1), source)
    return inputs, outputs


def describe(parsed: Any, main: Mapping[str, TfNode], source: str) -> list[dict[str, Any]]:
    """Every signature (or the graph's own endpoints) with input/output dtypes and shapes."""
    found = []
    for name, sig in parsed.signatures.items():
        found.append({"name": name, "inputs": _tensors(sig.inputs),
                      "outputs": _tensors(sig.outputs)})
    if not found:
        inputs, outputs = graph_endpoints(main, source)
        found.append({
            "name": "(graph)",
            "inputs": [{"name": spec.name, "dtype": spec.dtype,
                        "shape": [None, *spec.shape]} for spec, _ in inputs.values()],
            "outputs": [{"name": out, "dtype": "float32", "shape": None} for _, out in outputs],
        })
    return found


def _tensors(infos: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, info in sorted(infos.items()):
        shape = shape_of(info.tensor_shape)
        out.append({"name": key, "tensor": info.name, "dtype": dtype_name(info.dtype),
                    "shape": None if shape is None else list(shape)})
    return out


def release_of(path: Path) -> dict[str, object]:
    """`release`/`input_size` of a slim release's `<release>_frozen.pb`."""
    stem = path.stem.removesuffix("_frozen") if path.suffix == ".pb" else path.stem
    return release_meta(stem)
