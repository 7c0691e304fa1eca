"""The frozen-graph reference in a process of its own, started before it is needed.

Verifying a slim release against its frozen graph needs TensorFlow, whose import alone takes
3-4 s and 540 MB here: more than everything else `convert` does. Run in the converting
process, it came after torch's import and the conversion (16 s in all, 1.3 GB). Here a
worker process starts first and imports TensorFlow while this process imports torch, reads
the release and builds the module; by the time verification asks, it is ready. It gets the
path of the frozen graph the release already unpacked (nothing is read twice) and the input
batches; it answers logits and probabilities, and how long each step took.

Protocol (stdin/stdout of `_tensorflow_worker.py`): a message is a JSON header, then
`header["arrays"]` arrays in `.npy` format (read with `allow_pickle=False`), each of them
a frame: an 8-byte big-endian length and the bytes. The worker speaks first, once
TensorFlow is imported.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tf2torch.errors import SourceError

_SCRIPT = Path(__file__).with_name("_tensorflow_worker.py")
RELEASE_SUFFIXES = (".tgz", ".tar.gz")


class TensorFlowWorker:
    """A started worker; `timings` gathers the seconds of each of its steps."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        # -P: the script's folder (which holds references/tensorflow.py) stays off sys.path
        self._proc = subprocess.Popen([sys.executable, "-P", str(_SCRIPT)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr)
        self._ready: dict | None = None
        self.timings: dict[str, float] = {}
        self.peak_rss_mib: float | None = None  # the worker's, as of its last reply

    def _request(self, header: dict, arrays: tuple[np.ndarray, ...] = ()) -> tuple[dict, list]:
        self._wait_ready()
        frames = [json.dumps({**header, "arrays": len(arrays)}).encode()]
        for array in arrays:
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
            frames.append(buffer.getvalue())
        try:
            for frame in frames:
                self._proc.stdin.write(struct.pack(">Q", len(frame)) + frame)
            self._proc.stdin.flush()
        except BrokenPipeError:
            raise self._died() from None
        reply, out = self._receive()
        if not reply.get("ok"):
            raise SourceError(f"TensorFlow could not {header['op']} {header.get('path', '')}: "
                              f"{reply.get('error')}")
        return reply, out

    def _frame(self) -> bytes:
        size = self._proc.stdout.read(8)
        if len(size) < 8:
            raise self._died()
        return self._proc.stdout.read(struct.unpack(">Q", size)[0])

    def _receive(self) -> tuple[dict, list[np.ndarray]]:
        header = json.loads(self._frame())
        self.peak_rss_mib = header.get("peak_rss_mib")
        arrays = [np.load(io.BytesIO(self._frame()), allow_pickle=False)
                  for _ in range(header.get("arrays", 0))]
        return header, arrays

    def _wait_ready(self) -> None:
        if self._ready is None:
            waited = time.perf_counter()
            self._ready, _ = self._receive()
            self.timings["reference: TensorFlow import (own process)"] = self._ready["import_s"]
            self.timings["reference: waited for the import"] = time.perf_counter() - waited

    def _died(self) -> SourceError:
        self._proc.wait(timeout=10)
        self._stderr.seek(0)
        tail = [line for line in self._stderr.read().decode(errors="replace").splitlines()
                if line.strip()][-3:]
        if any("No module named 'tensorflow'" in line for line in tail):
            from tf2torch.errors import MissingDependencyError

            return MissingDependencyError("a live frozen-graph reference needs TensorFlow: "
                                          "pip install 'tf2torch[tf]'")
        return SourceError(f"the TensorFlow worker stopped (exit {self._proc.returncode}): "
                           + " | ".join(tail))

    def frozen_graph(self, path: Path) -> Any:
        """A `Reference` running the frozen GraphDef at `path` in the worker."""
        from tf2torch.references.tensorflow import Reference

        reply, _ = self._request({"op": "load", "path": str(Path(path).resolve())})
        self.timings["reference: graph import"] = reply["seconds"]

        def run(batch: np.ndarray) -> dict[str, np.ndarray]:
            reply, arrays = self._request({"op": "run"}, (np.asarray(batch, np.float32),))
            key = "reference: runs"
            self.timings[key] = self.timings.get(key, 0.0) + reply["seconds"]
            return dict(zip(reply["names"], arrays, strict=True))

        return Reference(f"TensorFlow frozen graph {Path(path).name}", run, None,
                         ("logits", "probabilities"))

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=10)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        self._stderr.close()

    def __enter__(self) -> TensorFlowWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
