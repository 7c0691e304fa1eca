"""TensorFlow's TFLite interpreter in a process of its own: a crash there is an error here.

A `.tflite` comes from the user, and TFLite's C++ kernels trust the file: a malformed one
can end the process with a signal. So every interpreter tf2torch runs lives in one worker
process (`_tflite_worker.py`), started on first use and shared by every interpreter of this
process, so a verification that runs several (the default runtime, the builtin and
reference kernels, a quantized file's float twin) imports TensorFlow once. Files are
validated by tf2torch's own reader before the worker sees them. The proxy offers the
interpreter methods tf2torch uses; a crash of the worker is a `SourceError` naming the file
(the next interpreter starts a fresh worker), a `RuntimeError` of the interpreter (a kernel
that refuses the file) an `InterpreterError`, which is both.

Protocol (stdin/stdout): a message is a JSON header, then `header["arrays"]` arrays in `.npy`
format (`allow_pickle=False`), each a frame: an 8-byte big-endian length and the bytes.
Arrays inside a request or an answer are `{"__array__": k}`, tuples `{"__tuple__": [...]}`,
numpy dtypes `{"__dtype__": name}`. The worker speaks first, once TensorFlow is imported.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import select
import signal
import struct
import subprocess
import sys
import tempfile
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from tf2torch.errors import MissingDependencyError, SourceError

_SCRIPT = Path(__file__).with_name("_tflite_worker.py")
# Seconds one request may take before the worker is taken for hung (a file that loops).
_TIMEOUT = float(os.environ.get("TF2TORCH_REFERENCE_TIMEOUT", "600"))


class InterpreterError(SourceError, RuntimeError):
    """TFLite's interpreter refused or failed to run a file (a `RuntimeError` there)."""


class _Worker:
    def __init__(self) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
        # -P: the script's folder (which holds references/tensorflow.py) stays off sys.path
        self._proc = subprocess.Popen([sys.executable, "-P", str(_SCRIPT)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr, env=env)
        self.alive = True
        self.dropped: list[int] = []  # interpreters gone here, to free there
        self._receive("starting TensorFlow's TFLite interpreter")

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
                raise SourceError(f"{doing}: TensorFlow's TFLite interpreter did not answer in "
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
            return MissingDependencyError("running a .tflite file needs TensorFlow: "
                                          "pip install 'tf2torch[tf]'")
        how = (f"crashed with {signal.Signals(-code).name}" if code < 0
               else f"stopped (exit {code})")
        detail = f" ({' | '.join(tail)})" if tail else ""
        return SourceError(f"{doing}: TensorFlow's TFLite interpreter {how}: the file is "
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


_shared: list[_Worker] = []  # at most one live worker per process


def _worker() -> _Worker:
    if not _shared or not _shared[0].alive:
        if _shared:
            _shared.pop().close()
        _shared.append(_Worker())
    return _shared[0]


@atexit.register
def close_worker() -> None:
    """Stop the shared worker (also at exit); the next interpreter starts a fresh one."""
    while _shared:
        _shared.pop().close()


def _encode(value: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(value, np.ndarray):
        arrays.append(value)
        return {"__array__": len(arrays) - 1}
    if isinstance(value, list | tuple):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(value: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(value, dict):
        if "__array__" in value:
            return arrays[value["__array__"]]
        if "__tuple__" in value:
            return tuple(_decode(v, arrays) for v in value["__tuple__"])
        if "__dtype__" in value:
            return np.dtype(value["__dtype__"]).type
        return {k: _decode(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    return value


class IsolatedInterpreter:
    """A `tf.lite.Interpreter` living in the worker: the same methods, by proxy."""

    def __init__(self, path: Path, preserve_all: bool, kernels: str) -> None:
        self.path = Path(path)
        self._worker = _worker()
        reply = self._ask({"op": "create", "path": str(self.path.resolve()),
                           "preserve_all": preserve_all, "kernels": kernels}, [], "load")
        self._id = reply["id"]
        weakref.finalize(self, self._worker.dropped.append, self._id)

    def _ask(self, header: dict, arrays: list[np.ndarray], doing: str) -> dict:
        reply, out = self._worker.request(header, arrays, f"{self.path} ({doing})")
        if reply.get("ok"):
            return _decode(reply, out)
        kind, error = reply.get("kind"), reply.get("error", "")
        if kind == "ValueError" and doing != "load":
            raise ValueError(error)  # e.g. a tensor never computed: callers expect it
        during = "" if doing == "load" else f" ({doing})"
        raise InterpreterError(f"{self.path}: TensorFlow's TFLite interpreter cannot run "
                               f"it{during}: {error}")

    def _call(self, method: str, *args: Any) -> Any:
        if not self._worker.alive:
            raise SourceError(f"{self.path}: TensorFlow's TFLite interpreter stopped earlier")
        arrays: list[np.ndarray] = []
        header = {"op": "call", "id": self._id, "method": method,
                  "args": _encode(list(args), arrays)}
        return self._ask(header, arrays, method)["result"]

    def __getattr__(self, method: str) -> Any:
        if method.startswith("__"):
            raise AttributeError(method)
        return lambda *args: self._call(method, *args)
