"""TensorFlow graphs (SavedModels, frozen GraphDefs, meta graphs) run in the reference worker
(`isolated.py`), so an abort or a signal in TensorFlow on a user's graph is one error here.

Each graph is opened there on request with tf2torch's reader, which checks it as a graph
before TensorFlow sees it (that second read is of the graph's structure; TensorFlow reads the
weights), and run by `tensorflow_graph.py`'s references.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tf2torch.references.isolated import Opened, float_arrays
from tf2torch.sources.model import SourceModel


def _open(source: SourceModel) -> Opened:
    signature = source.parsed.signature if source.parsed is not None else None
    return Opened(source.path, {"op": "open_graph", "path": str(Path(source.path).resolve()),
                                "signature": signature})


def tf_graph_runner(source: SourceModel):
    """`tensorflow_graph.tf_graph_runner`, run in the worker: NHWC batch (or one array per
    input) → every output, named as the converted module's."""
    graph = _open(source)

    def reference(inputs: np.ndarray | list[np.ndarray]) -> dict[str, np.ndarray]:
        return graph.named({"op": "run"}, float_arrays(inputs), "run")

    reference.graph = graph  # opened there as long as the runner lives
    return reference


def tf_graph_intermediates(source: SourceModel,
                           inputs: np.ndarray | list[np.ndarray]) -> dict[str, np.ndarray]:
    """`tensorflow_graph.tf_graph_intermediates`, run in the worker."""
    return _open(source).named({"op": "intermediates"}, float_arrays(inputs), "intermediates")
