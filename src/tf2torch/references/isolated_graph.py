"""TensorFlow graphs (SavedModels, frozen GraphDefs, meta graphs) run in a process of their
own, so an abort or a signal in TensorFlow on a user's graph is one error here.

One worker, started on first use and shared by every graph this process runs (TensorFlow
is imported once). Each graph is opened there on request with tf2torch's reader, which
checks it as a graph before TensorFlow sees it (that second read is of the graph's
structure; TensorFlow reads the weights), and run by `tensorflow_graph.py`'s references.
"""

from __future__ import annotations

import atexit
import weakref
from pathlib import Path

import numpy as np

from tf2torch.errors import SourceError
from tf2torch.references.worker_process import WorkerProcess
from tf2torch.sources.model import SourceModel

_SCRIPT = Path(__file__).with_name("_tf_graph_worker.py")



_shared: list[WorkerProcess] = []  # at most one live worker per process


def _worker() -> WorkerProcess:
    if not _shared or not _shared[0].alive:
        if _shared:
            _shared.pop().close()
        _shared.append(WorkerProcess(_SCRIPT, "TensorFlow"))
    return _shared[0]


@atexit.register
def close_worker() -> None:
    """Stop the shared worker (also at exit); the next graph starts a fresh one."""
    while _shared:
        _shared.pop().close()


def _drop(worker: WorkerProcess, key: int) -> None:
    worker.dropped.append(key)


class _OpenGraph:
    """A graph opened in the worker; freed there once this is gone."""

    def __init__(self, source: SourceModel) -> None:
        self.path = source.path
        self.process = _worker()
        signature = source.parsed.signature if source.parsed is not None else None
        reply = self.ask({"op": "open", "path": str(Path(source.path).resolve()),
                          "signature": signature}, [], "load")
        self.id = reply["id"]
        weakref.finalize(self, _drop, self.process, self.id)

    def ask(self, header: dict, arrays: list[np.ndarray], doing: str) -> dict:
        if not self.process.alive:
            raise SourceError(f"{self.path}: TensorFlow stopped earlier")
        header = header if doing == "load" else {**header, "id": self.id}
        reply, out = self.process.request(header, arrays, f"{self.path} ({doing})")
        if not reply.get("ok"):
            raise SourceError(f"{self.path}: TensorFlow cannot run it ({doing}): "
                              f"{reply.get('kind')}: {reply.get('error')}")
        if doing == "load":
            return reply
        return dict(zip(reply.get("names", []), out, strict=True))


def _arrays(inputs: np.ndarray | list[np.ndarray]) -> list[np.ndarray]:
    batch = inputs if isinstance(inputs, list | tuple) else [inputs]
    return [np.asarray(x, np.float32) for x in batch]


def tf_graph_runner(source: SourceModel):
    """`tensorflow_graph.tf_graph_runner`, run in a worker: NHWC batch (or one array per
    input) → every output, named as the converted module's."""
    graph = _OpenGraph(source)

    def reference(inputs: np.ndarray | list[np.ndarray]) -> dict[str, np.ndarray]:
        return graph.ask({"op": "run"}, _arrays(inputs), "run")

    reference.graph = graph  # opened there as long as the runner lives
    return reference


def tf_graph_intermediates(source: SourceModel,
                           inputs: np.ndarray | list[np.ndarray]) -> dict[str, np.ndarray]:
    """`tensorflow_graph.tf_graph_intermediates`, run in a worker."""
    return _OpenGraph(source).ask({"op": "intermediates"}, _arrays(inputs), "intermediates")
