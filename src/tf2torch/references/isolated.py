"""The TensorFlow references that run a user's file, in one worker process of their own.

One worker (`_tf_reference_worker.py`), started on first use and shared by every reference
this process runs, so TensorFlow is imported once: TF graphs (`isolated_graph.py`), Keras
models and layer-by-layer taps (`isolated_keras.py`). An `Opened` is one object opened
there (a graph, a Keras model, a layer reference), freed there once it is gone here. A
crash, silence or memory past the cap there is one `SourceError` naming the file here
(`worker_process.py`); the next reference starts a fresh worker.
"""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np

from tf2torch.errors import SourceError
from tf2torch.references.worker_process import SharedWorker, WorkerProcess

WORKER = SharedWorker(Path(__file__).with_name("_tf_reference_worker.py"), "TensorFlow")


def _drop(worker: WorkerProcess, key: int) -> None:
    worker.dropped.append(key)


class Opened:
    """An object opened in the worker by `open_header` (its `op` starts with "open")."""

    def __init__(self, path: str | Path, open_header: dict, runtime: str = "TensorFlow") -> None:
        self.path, self.runtime = Path(path), runtime
        self.process = WORKER.get()
        reply, _ = self._ask(open_header, [], "load")
        self.id, self.description = reply["id"], reply.get("description", "")
        weakref.finalize(self, _drop, self.process, self.id)

    def ask(self, header: dict, arrays: list[np.ndarray], doing: str) -> tuple[dict, list]:
        if not self.process.alive:
            raise SourceError(f"{self.path}: {self.runtime} stopped earlier")
        return self._ask({**header, "id": self.id}, arrays, doing)

    def named(self, header: dict, arrays: list[np.ndarray], doing: str) -> dict[str, np.ndarray]:
        """An answer of named arrays, in the order the worker produced them."""
        reply, out = self.ask(header, arrays, doing)
        return dict(zip(reply.get("names", []), out, strict=True))

    def _ask(self, header: dict, arrays: list[np.ndarray], doing: str) -> tuple[dict, list]:
        reply, out = self.process.request(header, arrays, f"{self.path} ({doing})")
        if not reply.get("ok"):
            raise SourceError(f"{self.path}: {self.runtime} cannot run it ({doing}): "
                              f"{reply.get('kind')}: {reply.get('error')}")
        return reply, out


def float_arrays(inputs: np.ndarray | list[np.ndarray]) -> list[np.ndarray]:
    batch = inputs if isinstance(inputs, list | tuple) else [inputs]
    return [np.asarray(x, np.float32) for x in batch]
