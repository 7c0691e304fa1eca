"""Run the original Keras model as the verification reference (TensorFlow imported lazily):
loaded and run in the reference worker (`isolated.py`), never in the converting process."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tf2torch.errors import MissingDependencyError
from tf2torch.sources.ir import Graph
from tf2torch.sources.model import SourceModel

RunKeras = Callable[[np.ndarray | list[np.ndarray]], dict[str, np.ndarray]]


def _load_model(path: Path, keras_major: int):
    """Keras 3 reads `.keras` and its own `.h5`; Keras 2 files go through tf_keras if present."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import keras
    except ImportError as err:
        raise MissingDependencyError("verifying against Keras needs TensorFlow "
                                     "(pip install 'tf2torch[tf]')") from err
    if keras_major < 3:
        try:
            import tf_keras

            return tf_keras.models.load_model(path, compile=False)
        except ImportError:
            pass
    # safe_mode stays on: a Lambda layer is refused, never deserialised.
    return keras.models.load_model(path, compile=False)


def keras_major(graph: Graph) -> int:
    return int(str(graph.meta.get("keras_version", "3")).split(".")[0])


def load_keras_model(path: str | Path, graph: Graph | None = None):
    """The file loaded by the Keras that wrote it (Keras 3, or tf_keras for Keras 2 files),
    in this process: callers run in the reference worker.

    `graph` is the file's IR when the caller has read it already (it names the version).
    """
    from tf2torch.sources.keras.reader import read_keras

    path = Path(path)
    graph = graph or read_keras(path).graph
    return _load_model(path, keras_major(graph))


def load_keras_runner(path: str | Path, keras_major: int, outputs: list[str]) -> RunKeras:
    """The file loaded by Keras in this process, as a runner (what the worker runs)."""
    model = _load_model(Path(path), keras_major)

    def run(inputs: np.ndarray | list[np.ndarray]) -> dict[str, np.ndarray]:
        batch = inputs if isinstance(inputs, list | tuple) else [inputs]
        batch = [np.asarray(x, np.float32) for x in batch]
        result = model(batch if len(batch) > 1 else batch[0], training=False)
        if isinstance(result, dict):
            result = list(result.values())
        if not isinstance(result, list | tuple):
            result = [result]
        return {name: np.asarray(out) for name, out in zip(outputs, result, strict=True)}

    return run


def keras_runner(source: SourceModel) -> RunKeras:
    """A callable: NHWC batch (or one array per input) → outputs named like `convert_graph`'s
    outputs, computed by Keras itself on the file `source` was read from, in the reference
    worker (`isolated.py`): a crash of Keras or TensorFlow on the file is one error here."""
    from tf2torch.references.isolated import Opened, float_arrays

    graph = source.graph
    model = Opened(source.path, {
        "op": "open_keras", "path": str(Path(source.path).resolve()),
        "keras_major": keras_major(graph), "outputs": list(graph.output_names)}, "Keras")

    def run(inputs: np.ndarray | list[np.ndarray]) -> dict[str, np.ndarray]:
        return model.named({"op": "keras"}, float_arrays(inputs), "run")

    run.model = model  # opened there as long as the runner lives
    return run
