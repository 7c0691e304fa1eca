"""Read TensorFlow graphs without TensorFlow: a SavedModel folder, a frozen GraphDef
(`.pb`), or a TF1 meta graph (`.meta`) beside its checkpoint.

The protocol buffers are parsed by `protobuf` (`protos.py`), function calls inlined
(`nodes.py`), variables matched to the bundle's tensors (`variables.py`), the graph
simplified (`simplify.py`) and turned into the IR (`graph.py`). Weights stay in their
files until a converter reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tf2torch.errors import SourceError
from tf2torch.sources.checkpoint.bundle import read_bundle
from tf2torch.sources.graph_checks import validate_graph
from tf2torch.sources.model import SourceModel, TensorInfo, TensorStore
from tf2torch.sources.tensorflow import endpoints, is_saved_model
from tf2torch.sources.tensorflow.graph import build_graph
from tf2torch.sources.tensorflow.nodes import Inliner, plain_nodes, topological
from tf2torch.sources.tensorflow.protos import parse
from tf2torch.sources.tensorflow.simplify import Lazy, simplify
from tf2torch.sources.tensorflow.variables import (
    VARIABLE_OPS,
    object_graph_keys,
    saver_keys,
    variable_weights,
)

SAVED_MODEL, FROZEN_GRAPH, META_GRAPH = "tf-saved-model", "tf-frozen-graph", "tf-meta-graph"
DEFAULT_SIGNATURE = "serving_default"


@dataclass
class TfGraphFile:
    """What the reader parsed, handed on in `SourceModel.parsed`."""

    form: str
    graph_def: Any
    signatures: dict[str, Any] = field(default_factory=dict)  # name → SignatureDef
    signature: str | None = None
    checkpoint: Path | None = None  # the variables' bundle prefix


def read_tensorflow(path: str | Path, signature: str | None = None) -> SourceModel:
    """A SavedModel (folder or its saved_model.pb), a GraphDef `.pb` or a `.meta` file."""
    path = Path(path)
    try:
        return _read(path, signature)
    except SourceError as err:  # every message names the file
        if str(err).startswith(str(path)):
            raise
        raise SourceError(f"{path}: {err}") from None


def _read(path: Path, signature: str | None) -> SourceModel:
    if is_saved_model(path):
        return _read_saved_model(path if path.is_dir() else path.parent, signature)
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    if path.suffix == ".meta":
        meta_graph = parse("tensorflow.MetaGraphDef", path.read_bytes(), path)
        prefix = path.with_suffix("")
        parsed = TfGraphFile(META_GRAPH, meta_graph.graph_def, _signatures(meta_graph), None,
                             prefix)
        return _finish(path, parsed, signature, _bundle(prefix, path), meta_graph)
    graph_def = parse("tensorflow.GraphDef", path.read_bytes(), path)
    if signature is not None:
        raise SourceError(f"{path}: a GraphDef has no signatures (--signature is for "
                          "SavedModels and meta graphs)")
    return _finish(path, TfGraphFile(FROZEN_GRAPH, graph_def), None, None, None)


def _read_saved_model(folder: Path, signature: str | None) -> SourceModel:
    pb = folder / "saved_model.pb"
    if pb.is_file():
        saved = parse("tensorflow.SavedModel", pb.read_bytes(), pb)
    else:
        saved = _parse_text(folder / "saved_model.pbtxt")
    if not saved.meta_graphs:
        raise SourceError(f"{pb}: the SavedModel holds no meta graph")
    meta_graph = next((m for m in saved.meta_graphs if "serve" in m.meta_info_def.tags),
                      saved.meta_graphs[0])
    prefix = folder / "variables" / "variables"
    parsed = TfGraphFile(SAVED_MODEL, meta_graph.graph_def, _signatures(meta_graph), None, prefix)
    return _finish(folder, parsed, signature, _bundle(prefix, folder), meta_graph)


def _parse_text(path: Path) -> Any:
    from google.protobuf import text_format

    from tf2torch.sources.tensorflow.protos import message_class

    message = message_class("tensorflow.SavedModel")()
    try:
        text_format.Parse(path.read_text(encoding="utf-8"), message)
    except (text_format.ParseError, UnicodeDecodeError) as err:
        raise SourceError(f"{path}: not a readable SavedModel ({err})") from None
    return message


def _signatures(meta_graph: Any) -> dict[str, Any]:
    return {k: v for k, v in sorted(meta_graph.signature_def.items())
            if not k.startswith("__") and v.outputs}


def _bundle(prefix: Path, path: Path) -> TensorStore | None:
    if not prefix.with_name(prefix.name + ".index").exists():
        return None
    store, _ = read_bundle(prefix)
    return store


def _finish(path: Path, parsed: TfGraphFile, signature: str | None,
            store: TensorStore | None, meta_graph: Any) -> SourceModel:
    source = str(path)
    main = plain_nodes(parsed.graph_def.node)
    if parsed.signatures or parsed.form == SAVED_MODEL:
        parsed.signature = endpoints.choose_signature(parsed.signatures, signature, source)
        inputs, outputs = endpoints.signature_endpoints(
            parsed.signatures[parsed.signature], main, source)
    else:
        inputs, outputs = endpoints.graph_endpoints(main, source)
    calls = {ref[0] for ref, _ in outputs if main[ref[0]].attr("f")}
    inliner = Inliner(parsed.graph_def.library, source)
    needed = {n.name for n in topological(main, [ref[0] for ref, _ in outputs])}
    flat = next(iter(calls)) if len(calls) == 1 else None
    inliner.add_graph([nd for nd in parsed.graph_def.node if nd.name in needed], flat_call=flat)
    nodes = inliner.finish()
    outputs = [(inliner.resolve(inliner.flat_results[ref[1]] if ref[0] == flat else ref), key)
               for ref, key in outputs]
    keys = _variable_keys(parsed, main, inliner, store, meta_graph, path)
    live = {n.name for n in topological(nodes, [ref[0] for ref, _ in outputs])}
    live_variables = {name: key for name, key in keys.items() if name in live}
    unmatched = [n for n in live if nodes[n].op in VARIABLE_OPS and n not in live_variables]
    if unmatched:
        raise SourceError(f"{path}: no checkpoint entry for variable(s) {', '.join(unmatched)}")
    variables = variable_weights(live_variables, store, path)
    facts = {node: f for node, (_, f) in inputs.items()}
    simplified = simplify(nodes, [ref for ref, _ in outputs], facts, variables, source)
    name = path.stem if path.is_file() else path.name
    described = endpoints.describe(parsed, main, source)
    chosen = next(d for d in described if d["name"] in (parsed.signature, "(graph)"))
    fixed = any(i["shape"] and i["shape"][0] is not None for i in chosen["inputs"])
    meta = {"form": parsed.form, "signature": parsed.signature, "fixed_batch": fixed}
    graph, weights = build_graph(simplified, [(n, spec) for n, (spec, _) in inputs.items()],
                                 outputs, name, meta)
    validate_graph(graph, path)
    tensors = _store(variables, weights, store)
    info = {
        "signature": parsed.signature,
        "signatures": described,
        "op_counts": graph.op_counts(),
        "variables": len(variables),
        "variable_values": sum(int(np.prod(v.shape, dtype=np.int64)) for v in variables.values()),
        "variable_bytes": sum(int(np.prod(v.shape, dtype=np.int64)) * np.dtype(v.dtype).itemsize
                              for v in variables.values()),
        **endpoints.release_of(path),
    }
    runnable = {{SAVED_MODEL: "saved_model", FROZEN_GRAPH: "frozen_pb",
                 META_GRAPH: "meta_graph"}[parsed.form]: path}
    return SourceModel(parsed.form, path, tensors, graph, info, runnable, parsed)


def _variable_keys(parsed: TfGraphFile, main: dict, inliner: Inliner,
                   store: TensorStore | None, meta_graph: Any, path: Path,
                   ) -> dict[str, tuple[str, str]]:
    keys = saver_keys(main)
    if parsed.form == SAVED_MODEL and meta_graph.object_graph_def.nodes and store is not None:
        concrete = meta_graph.object_graph_def.concrete_functions
        for call in inliner.calls.values():
            if call.name in main:  # a call in the main graph: its captures are variables
                keys.update(object_graph_keys(store, meta_graph.object_graph_def, call,
                                              concrete, path))
    return keys


def _store(variables: dict[str, Lazy], weights: dict[str, Lazy],
           bundle: TensorStore | None) -> TensorStore:
    """The variables the signature uses (by variable name) and every weight the IR names;
    closing it closes the variables' `bundle`."""
    store = TensorStore(close=bundle.close if bundle is not None else None)
    for name, lazy in [(v.name, v) for v in variables.values()] + list(weights.items()):
        if name not in store:
            store.add(TensorInfo(name, lazy.shape, np.dtype(lazy.dtype)), lazy.load)
    return store


__all__ = ["FROZEN_GRAPH", "META_GRAPH", "SAVED_MODEL", "TfGraphFile", "is_saved_model", "read_tensorflow"]
