"""A runtime in a process of its own, spoken to in frames: its crash is an error here.

A model comes from the user, and the runtimes that run originals (TFLite's C++ kernels,
TensorFlow's) trust the file: a malformed one can end the process with a signal or an
abort. Run in a `WorkerProcess`, that ends the worker, and this process raises one
`SourceError` naming the file and how the worker ended.

Protocol (stdin/stdout): a message is a JSON header, then `header["arrays"]` arrays in `.npy`
format (`allow_pickle=False`), each a frame: an 8-byte big-endian length and the bytes. The
worker speaks first, once its runtime is imported; a request may list `drop`, objects the
worker may free. A worker that does not answer in `TF2TORCH_REFERENCE_TIMEOUT` seconds
(default 600) is stopped.
"""

from __future__ import annotations

import io
import json
import os
import select
import signal
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from tf2torch.errors import MissingDependencyError, SourceError

_TIMEOUT = float(os.environ.get("TF2TORCH_REFERENCE_TIMEOUT", "600"))


class WorkerProcess:
    """A started worker: `request` sends one message and returns the answer; its death
    (a signal, an exit, silence past the timeout) is a `SourceError` saying so."""

    def __init__(self, script: Path, runtime: str) -> None:
        self.runtime = runtime  # what runs there, for messages
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
        # -P: the script's folder (which holds references/tensorflow.py) stays off sys.path
        self._proc = subprocess.Popen([sys.executable, "-P", str(script)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr, env=env)
        self.alive = True
        self.dropped: list[int] = []  # interpreters gone here, to free there
        self._receive(f"starting {runtime}")

    def request(self, header: dict, arrays: list[np.ndarray], doing: str) -> tuple[dict, list]:
        drop = self.dropped[:]
        del self.dropped[: len(drop)]
        frames = [json.dumps({**header, "arrays": len(arrays), "drop": drop}).encode()]
        for array in arrays:
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
            frames.append(buffer.getvalue())
        try:
            for frame in frames:
                self._proc.stdin.write(struct.pack(">Q", len(frame)) + frame)
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._died(doing) from None
        return self._receive(doing)

    def _read(self, size: int, doing: str) -> bytes:
        data = b""
        while len(data) < size:
            ready, _, _ = select.select([self._proc.stdout], [], [], _TIMEOUT)
            if not ready:
                self.close()
                raise SourceError(f"{doing}: {self.runtime} did not answer in "
                                  f"{_TIMEOUT:.0f} s (TF2TORCH_REFERENCE_TIMEOUT); stopped it")
            chunk = os.read(self._proc.stdout.fileno(), size - len(data))
            if not chunk:
                raise self._died(doing)
            data += chunk
        return data

    def _frame(self, doing: str) -> bytes:
        return self._read(struct.unpack(">Q", self._read(8, doing))[0], doing)

    def _receive(self, doing: str) -> tuple[dict, list[np.ndarray]]:
        header = json.loads(self._frame(doing))
        arrays = [np.load(io.BytesIO(self._frame(doing)), allow_pickle=False)
                  for _ in range(header.get("arrays", 0))]
        return header, arrays

    def _died(self, doing: str) -> SourceError:
        self.alive = False
        try:
            code = self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        self._stderr.seek(0)
        tail = [line for line in self._stderr.read().decode(errors="replace").splitlines()
                if line.strip()][-2:]
        if any("No module named 'tensorflow'" in line for line in tail):
            return MissingDependencyError(f"{self.runtime} needs TensorFlow: "
                                          "pip install 'tf2torch[tf]'")
        how = (f"crashed with {signal.Signals(-code).name}" if code < 0
               else f"stopped (exit {code})")
        detail = f" ({' | '.join(tail)})" if tail else ""
        return SourceError(f"{doing}: {self.runtime} {how}: the file is "
                           f"malformed in a way it does not check{detail}")

    def close(self) -> None:
        self.alive = False
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=10)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        self._stderr.close()
