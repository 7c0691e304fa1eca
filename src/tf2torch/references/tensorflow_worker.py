"""The frozen-graph reference in a process of its own, started before it is needed.

Verifying a slim release against its frozen graph needs TensorFlow, whose import alone takes
3-4 s and 540 MB here: more than everything else `convert` does. Run in the converting
process, it came after torch's import and the conversion (16 s in all, 1.3 GB). Here a
worker process starts first and imports TensorFlow while this process imports torch, reads
the release and builds the module; by the time verification asks, it is ready. It gets the
path of the frozen graph the release already unpacked (nothing is read twice) and the input
batches; it answers logits and probabilities, and how long each step took.

The messages are `util/frames.py`'s, and the worker a `WorkerProcess` (so a crash, silence
or memory past its cap is one error); this one also reports its peak memory in each answer.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from tf2torch.errors import SourceError, Tf2TorchError
from tf2torch.references.worker_process import WorkerProcess

_SCRIPT = Path(__file__).with_name("_tensorflow_worker.py")
RELEASE_SUFFIXES = (".tgz", ".tar.gz")


class TensorFlowWorker:
    """A started worker; `timings` gathers the seconds of each of its steps."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self._process = WorkerProcess(_SCRIPT, "the frozen-graph reference (TensorFlow)",
                                      wait=False)
        self.timings: dict[str, float] = {}
        self.imported: str | None = None  # how the worker imported TensorFlow, once ready
        self._ahead: dict | None = None  # a load sent by `load_ahead`, not yet answered
        self._ended: Tf2TorchError | None = None  # how the worker ended, if `load_ahead` saw it
        weakref.finalize(self, self._process.close)  # a reference dropped stops its worker

    @property
    def peak_rss_mib(self) -> float | None:
        """The worker's peak resident memory, as of its last answer."""
        return self._process.last.get("peak_rss_mib")

    def _request(self, header: dict, arrays: tuple[np.ndarray, ...] = ()) -> tuple[dict, list]:
        self._send(header, arrays)
        return self._answer(header)

    def _send(self, header: dict, arrays: tuple[np.ndarray, ...] = ()) -> None:
        doing = _doing(header)
        if not self._process.alive:
            raise self._ended or SourceError(f"{doing}: the frozen-graph reference stopped "
                                             "earlier")
        self._process.send(header, arrays, doing)

    def _answer(self, header: dict) -> tuple[dict, list]:
        doing = _doing(header)
        self._wait_ready(doing)
        reply, out = self._process.answer(doing)
        if not reply.get("ok"):
            raise SourceError(f"TensorFlow could not {header['op']} {header.get('path', '')}: "
                              f"{reply.get('kind')}: {reply.get('error')}")
        return reply, out

    def _wait_ready(self, doing: str) -> None:
        if "reference: waited for the import" not in self.timings:
            waited = time.perf_counter()
            hello = self._process.ready(doing)
            self.timings["reference: TensorFlow import (own process)"] = hello["import_s"]
            self.imported = hello.get("imported")
            self.timings["reference: waited for the import"] = time.perf_counter() - waited

    def load_ahead(self, path: Path) -> None:
        """Have the worker import the frozen GraphDef at `path` now, while this process goes
        on (converting); `frozen_graph(path)` then takes its answer. A failure to load is
        raised there, not here."""
        load = {"op": "load", "path": str(Path(path).resolve())}
        if self._ahead is None and self._ended is None:
            try:
                self._send(load)
                self._ahead = load
            except Tf2TorchError as exc:  # the worker is gone: said when the graph is asked for
                self._ended = exc

    def frozen_graph(self, path: Path) -> Any:
        """A `Reference` running the frozen GraphDef at `path` in the worker."""
        from tf2torch.references.tensorflow import Reference

        load = {"op": "load", "path": str(Path(path).resolve())}
        ahead, self._ahead = self._ahead, None
        if ahead == load:
            reply, _ = self._answer(load)
        else:
            if ahead is not None:  # another graph went ahead: its answer comes first
                with contextlib.suppress(SourceError):  # and its failure is not this one's
                    self._answer(ahead)
            reply, _ = self._request(load)
        self.timings["reference: graph import"] = reply["seconds"]

        def run(batch: np.ndarray) -> dict[str, np.ndarray]:
            reply, arrays = self._request({"op": "run"}, (np.asarray(batch, np.float32),))
            key = "reference: runs"
            self.timings[key] = self.timings.get(key, 0.0) + reply["seconds"]
            return dict(zip(reply["names"], arrays, strict=True))

        return Reference(f"TensorFlow frozen graph {Path(path).name}", run, None,
                         ("logits", "probabilities"))

    def close(self) -> None:
        self._process.close()

    def __enter__(self) -> TensorFlowWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _doing(header: dict) -> str:
    return f"{header.get('path', 'frozen graph')} ({header['op']})"


def will_run_frozen_graph(source: str | Path, reference: str | Path | None,
                          verify: bool | None) -> bool:
    """Whether verifying `source` runs a frozen graph, as far as its name tells: a slim
    release archive (they ship one, and it is the first reference chosen) or a `.pb` named
    as the reference. Known before anything is read, so the worker can start first."""
    if verify is False:
        return False
    if reference is not None:
        return Path(reference).suffix == ".pb"
    return str(source).lower().endswith(RELEASE_SUFFIXES)
