"""Runnable originals to verify against: stored outputs (tests.h5) or a live TFLite run.

Each reference is a `RunFn` (NHWC float32 batch → named outputs) for `verify.compare_runs`,
plus the inputs it can answer for. TensorFlow is imported only by the live references.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tf2torch.errors import MissingDependencyError, SourceError

RunFn = Callable[[np.ndarray], Mapping[str, np.ndarray]]


@dataclass
class Reference:
    """A named reference and the inputs it supports (None: any input)."""

    description: str
    run: RunFn
    fixed_inputs: dict[str, np.ndarray] | None = None
    outputs: tuple[str, ...] = field(default=("probabilities",))


def stored_reference(path: Path) -> Reference:
    """`tests.h5`: RandomInput (NHWC), OutputFor{Zeros,Random}, optional LogitsFor{...}."""
    import h5py

    from tf2torch.sources.keras.checks import check_h5

    try:
        with h5py.File(path, "r") as f:
            check_h5(f, Path(path).stat().st_size)  # nothing read from outside the file
            data = {k: np.asarray(f[k]) for k in f}
    except SourceError as exc:
        raise SourceError(f"{path}: {exc}") from None
    except (OSError, RuntimeError) as exc:
        raise SourceError(f"{path}: not a readable HDF5 reference file ({exc})") from exc
    needed = {"RandomInput", "OutputForZeros", "OutputForRandom"}
    if not needed <= set(data):
        raise SourceError(f"{path}: missing {sorted(needed - set(data))}")
    random_input = data["RandomInput"].astype(np.float32)
    zeros_rows = data["OutputForZeros"].reshape(-1, data["OutputForZeros"].shape[-1]).shape[0]
    cases = {
        "zeros": np.zeros((zeros_rows, *random_input.shape[1:]), np.float32),
        "random": random_input,
    }
    answers = {
        "zeros": _stored_outputs(data, "Zeros"),
        "random": _stored_outputs(data, "Random"),
    }

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        for case, case_input in cases.items():
            if batch.shape == case_input.shape and np.array_equal(batch, case_input):
                return answers[case]
        raise ValueError("stored reference has no outputs for this input")

    return Reference(f"stored outputs {path.name}", run, cases,
                     tuple(answers["random"]))


def _stored_outputs(data: Mapping[str, np.ndarray], case: str) -> dict[str, np.ndarray]:
    rows = data[f"OutputFor{case}"]
    out = {"probabilities": rows.reshape(-1, rows.shape[-1])}
    if f"LogitsFor{case}" in data:
        logits = data[f"LogitsFor{case}"]
        out["logits"] = logits.reshape(-1, logits.shape[-1])
    return out


def tflite_reference(path: Path, output_name: str = "probabilities") -> Reference:
    """A live run of a `.tflite` file with TensorFlow's interpreter, one image at a time."""
    interpreter = tflite_interpreter(path)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        rows = []
        for image in batch:
            interpreter.set_tensor(inp["index"], image[None].astype(np.float32))
            interpreter.invoke()
            rows.append(interpreter.get_tensor(out["index"]).reshape(-1))
        return {output_name: np.stack(rows)}

    return Reference(f"TFLite interpreter on {path.name}", run, None, (output_name,))


def tflite_interpreter(path: str | Path, preserve_all: bool = False, kernels: str = "default",
                       checked: bool = False):
    """TensorFlow's TFLite interpreter, tensors allocated, in a process of its own
    (`isolated_tflite.py`), on a file tf2torch's reader has checked first.

    `kernels` picks the runtime: "default" (XNNPACK where it applies), "builtin" (TFLite's
    optimized kernels alone) or "reference" (its plain reference kernels). `preserve_all`
    keeps every intermediate tensor; it turns "default" into "builtin", since XNNPACK's
    internal tensors are not kept (they would read as garbage). `checked`: the caller has
    read the file with tf2torch's reader (which validates it) or derived it from one it read.
    """
    from tf2torch.references.isolated_tflite import IsolatedInterpreter
    from tf2torch.sources.tflite.reader import read_tflite_model

    if not checked:
        read_tflite_model(path)  # a file the reader refuses never reaches TFLite's kernels
    if preserve_all and kernels == "default":
        kernels = "builtin"
    return IsolatedInterpreter(Path(path), preserve_all, kernels)


def frozen_graph_reference(path: Path) -> Reference:
    """A live run of a frozen GraphDef (`*_frozen.pb` in slim releases) with TensorFlow.

    The input is the graph's single Placeholder; probabilities are the last Softmax's output
    and logits its input, so both are compared (a .tflite release file gives only the first).
    """
    tf = _import_tf("a live frozen-graph reference")
    graph_def = load_graph_def(path)
    feed, fetches = slim_endpoints(graph_def, path)
    graph_fn = frozen_function(tf, graph_def, [feed], fetches)

    def run_graph(batch: np.ndarray) -> dict[str, np.ndarray]:
        probs, logits = (np.asarray(t).reshape(len(batch), -1) for t in graph_fn([batch]))
        return {"logits": logits, "probabilities": probs}

    return Reference(f"TensorFlow frozen graph {path.name}", run_graph, None,
                     ("logits", "probabilities"))


def slim_endpoints(graph_def: Any, path: str | os.PathLike) -> tuple[str, list[str]]:
    """A slim frozen graph's one Placeholder (the feed) and its last Softmax's output and
    input (probabilities and logits), as tensor names."""
    placeholders = [n.name for n in graph_def.node if n.op == "Placeholder"]
    softmaxes = [n for n in graph_def.node if n.op == "Softmax"]
    if len(placeholders) != 1 or not softmaxes:
        raise SourceError(f"{path}: expected one Placeholder input and a Softmax output, found "
                          f"{len(placeholders)} placeholder(s) and {len(softmaxes)} softmax(es)")
    logits = softmaxes[-1].input[0]
    return f"{placeholders[0]}:0", [f"{softmaxes[-1].name}:0",
                                    logits if ":" in logits else f"{logits}:0"]


def load_graph_def(path: str | os.PathLike, tf: Any = None):
    """A frozen GraphDef parsed (protobuf only: nothing in it runs until it is imported).
    `tf`: TensorFlow where the caller imported it already (a worker without torch)."""
    tf = tf or _import_tf("reading a frozen graph")
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(Path(path).read_bytes())
    except Exception as exc:  # protobuf's DecodeError has no stable import path
        raise SourceError(f"{path}: not a readable frozen GraphDef ({exc})") from exc
    return graph_def


def frozen_function(tf: Any, graph_def: Any, feeds: list[str], fetches: list[str],
                    rewrite: bool = True, constants: Mapping[str, np.ndarray] | None = None,
                    ) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """The GraphDef imported into a graph of its own and run by a plain TF1 session: arrays
    for `feeds` → the `fetches` tensors. Nothing keeps the GraphDef (`wrap_function` +
    `prune` kept it and a second copy of the graph: the slim worker peaked at 1061 MiB that
    way, 936 this way). `rewrite=False` runs the graph as written: Grappler, TensorFlow's
    graph rewriter, copies a graph several times over, and took the 1.4 GB ConvNeXtXLarge
    GraphDef past 19 GiB. `constants`: what `constants_as_placeholders` took out, fed with
    every run."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    config = tf.compat.v1.ConfigProto()
    config.graph_options.rewrite_options.disable_meta_optimizer = not rewrite
    session = tf.compat.v1.Session(graph=graph, config=config)
    names = [f if ":" in f else f"{f}:0" for f in fetches]
    fixed = dict(constants or {})
    return lambda arrays: session.run(names, {**fixed, **dict(zip(feeds, arrays, strict=True))})


# Constants bigger than this (the weights; not the shapes, axes and paddings that shape
# inference reads) are what `constants_as_placeholders` takes out of a graph
FED_CONSTANT_BYTES = 4096


def constants_as_placeholders(tf: Any, graph_def: Any) -> dict[str, np.ndarray]:
    """Turns each Const node above `FED_CONSTANT_BYTES` into a Placeholder of its dtype and
    shape, in place, and returns the values by tensor name, for `frozen_function` to feed.

    A TF1 session copies the graph it runs (the execution state's graph, the client graph,
    the partitions, each Const kernel's own tensor), and each copy carries the weights: the
    slim MobileNetV2-1.4 graph's first run grew its process by 138 MiB that way, by 45 with
    the weights fed. The same kernels compute on the same values; only where they are kept
    changes. For a GraphDef the caller lets go of (it no longer holds the weights)."""
    values = {}
    for node in graph_def.node:
        tensor = node.attr["value"].tensor if node.op == "Const" else None
        if tensor is None or tensor.ByteSize() <= FED_CONSTANT_BYTES:
            continue
        values[f"{node.name}:0"] = tf.make_ndarray(tensor)
        dtype, shape = node.attr["dtype"].type, type(tensor.tensor_shape)()
        shape.CopyFrom(tensor.tensor_shape)
        node.op = "Placeholder"
        node.ClearField("attr")
        node.attr["dtype"].type = dtype
        node.attr["shape"].shape.CopyFrom(shape)
    return values


def _import_tf(purpose: str):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import torch  # noqa: F401 - torch before tensorflow, always

    try:
        import tensorflow as tf
    except ImportError as exc:
        raise MissingDependencyError(f"{purpose} needs TensorFlow: pip install 'tf2torch[tf]'") \
            from exc
    return tf
