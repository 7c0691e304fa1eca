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

The messages are `util/frames.py`'s; inside a request or an answer, arrays are
`{"__array__": k}`, tuples `{"__tuple__": [...]}`, numpy dtypes `{"__dtype__": name}`.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

import numpy as np

from tf2torch.errors import SourceError
from tf2torch.references.worker_process import SharedWorker

WORKER = SharedWorker(Path(__file__).with_name("_tflite_worker.py"),
                      "TensorFlow's TFLite interpreter")


class InterpreterError(SourceError, RuntimeError):
    """TFLite's interpreter refused or failed to run a file (a `RuntimeError` there)."""


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
        self._worker = WORKER.get()
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
