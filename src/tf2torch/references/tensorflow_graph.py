"""Run a TensorFlow graph with TensorFlow itself, as the verification reference.

- SavedModel: `tf.saved_model.load` and the chosen signature, called with the inputs by
  key; outputs are the signature's dict (by key, as the converted module orders them).
- Frozen GraphDef: imported into a graph of its own and run by a TF1 session, its
  placeholders fed, its outputs fetched.
- Meta graph: a `tf.compat.v1` session, the graph imported with its saver, the variables
  restored from the checkpoint beside it.

`tf_graph_intermediates` reads the tensors of every converted node for `verify
--per-layer`: by name from the GraphDef / meta graph, and for a SavedModel from
TensorFlow's own frozen form of the signature (`convert_variables_to_constants_v2`, which
inlines the functions under the names the reader gives them). TensorFlow is imported
lazily, only here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tf2torch.errors import SourceError
from tf2torch.references.tensorflow import _import_tf, frozen_function, load_graph_def
from tf2torch.sources.model import SourceModel

RunGraph = Callable[[np.ndarray | list[np.ndarray]], dict[str, np.ndarray]]


def _arrays(inputs: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    batch = inputs if isinstance(inputs, list | tuple) else [inputs]
    return [np.asarray(x, np.float32) for x in batch]


def _tensor_names(source: SourceModel) -> tuple[list[str], list[str]]:
    """The graph tensors of the model's inputs and outputs, in the converted order."""
    parsed, graph = source.parsed, source.graph
    if parsed.signature is not None:
        sig = parsed.signatures[parsed.signature]
        return ([sig.inputs[i.name].name for i in graph.inputs],
                [sig.outputs[name].name for name in graph.output_names])
    return ([f"{i.name}:0" for i in graph.inputs],
            [n if ":" in n else f"{n}:0" for n in graph.output_names])


class _Session:
    """A TF1 meta graph in its own graph and session, variables restored."""

    def __init__(self, tf: Any, meta: Path, prefix: Path) -> None:
        self.graph = tf.Graph()
        with self.graph.as_default():
            saver = tf.compat.v1.train.import_meta_graph(str(meta), clear_devices=True)
            self.session = tf.compat.v1.Session(graph=self.graph)
            if saver is None:
                raise SourceError(f"{meta}: the meta graph has no saver to restore "
                                  "its variables with")
            saver.restore(self.session, str(prefix))

    def run(self, fetches: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(fetches, feeds)


def _per_sample(run: Callable[[list[np.ndarray]], list[np.ndarray]], arrays: list[np.ndarray],
                fixed: bool) -> list[np.ndarray]:
    if not fixed:
        return [np.asarray(v) for v in run(arrays)]
    rows = [run([a[i:i + 1] for a in arrays]) for i in range(arrays[0].shape[0])]
    return [np.concatenate([np.asarray(r[k]) for r in rows]) for k in range(len(rows[0]))]


def _caller(source: SourceModel, fetch: list[str],
            graph_def: Any = None) -> Callable[[list[np.ndarray]], list]:
    """A function: input arrays → the `fetch` tensors, computed by TensorFlow. `graph_def`:
    the frozen graph `_frozen_graph_def` gave, where the caller has it already."""
    tf = _import_tf("a live TensorFlow graph reference")
    feeds, _ = _tensor_names(source)
    if source.format == "tf-meta-graph":
        session = _Session(tf, source.path, source.parsed.checkpoint)
        return lambda arrays: session.run(fetch, dict(zip(feeds, arrays, strict=True)))
    graph_def = graph_def if graph_def is not None else _frozen_graph_def(tf, source)
    if source.format != "tf-frozen-graph":  # a SavedModel signature, frozen by TensorFlow
        feeds = [f"{_placeholder(graph_def, i)}:0" for i in range(len(source.graph.inputs))]
    return frozen_function(tf, graph_def, feeds, fetch, rewrite=False)  # as written


def _frozen_graph_def(tf: Any, source: SourceModel) -> Any:
    """The GraphDef TensorFlow runs: the file itself, or a SavedModel signature frozen."""
    if source.format == "tf-frozen-graph":
        return load_graph_def(source.path, tf)
    return _saved_model_frozen(tf, source)


def tf_graph_runner(source: SourceModel) -> RunGraph:
    """A callable: NHWC batch (or one array per input) → every output, named as the
    converted module's outputs, computed by TensorFlow on the file `source` was read from."""
    names = list(source.graph.output_names)
    fixed = bool(source.graph.meta.get("fixed_batch"))
    if source.format == "tf-saved-model":
        run = _signature_function(source)
    else:
        _, fetch = _tensor_names(source)
        run = _caller(source, fetch)

    def reference(inputs: np.ndarray | list[np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(names, _per_sample(run, _arrays(inputs), fixed), strict=True))

    return reference


def _signature_function(source: SourceModel) -> Callable[[list[np.ndarray]], list]:
    tf = _import_tf("a live SavedModel reference")
    loaded = tf.saved_model.load(str(source.path))
    fn = loaded.signatures[source.parsed.signature]
    keys = [i.name for i in source.graph.inputs]
    names = list(source.graph.output_names)

    def run(arrays: list[np.ndarray]) -> list[np.ndarray]:
        out = fn(**{k: tf.constant(a) for k, a in zip(keys, arrays, strict=True)})
        return [np.asarray(out[n]) for n in names]

    run.loaded = loaded  # keep the variables alive with the function
    return run


def _saved_model_frozen(tf: Any, source: SourceModel) -> Any:
    """TensorFlow's own inlined, variables-as-constants graph of the chosen signature."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    loaded = tf.saved_model.load(str(source.path))
    frozen = convert_variables_to_constants_v2(loaded.signatures[source.parsed.signature])
    return frozen.graph.as_graph_def()


def _placeholder(graph_def: Any, index: int) -> str:
    return [n.name for n in graph_def.node if n.op == "Placeholder"][index]


def tf_graph_intermediates(source: SourceModel,
                           inputs: np.ndarray | list[np.ndarray]) -> dict[str, np.ndarray]:
    """Every converted node's output that TensorFlow's graph has under the same name."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tf = _import_tf("per-node comparison with TensorFlow")
    graph_def = None  # parsed or frozen once, for the names here and the run
    if source.format == "tf-meta-graph":
        known = _meta_node_names(tf, source.path)
    else:
        graph_def = _frozen_graph_def(tf, source)
        known = {n.name for n in graph_def.node}
    wanted = [t for node in source.graph.nodes for t in node.outputs
              if t.rsplit(":", 1)[0] in known]
    arrays = _arrays(inputs)
    values = _per_sample(_caller(source, wanted, graph_def), arrays,
                         bool(source.graph.meta.get("fixed_batch")))
    return dict(zip(wanted, values, strict=True))


def _meta_node_names(tf: Any, path: Path) -> set[str]:
    meta = tf.compat.v1.MetaGraphDef()
    meta.ParseFromString(Path(path).read_bytes())
    return {n.name for n in meta.graph_def.node}
