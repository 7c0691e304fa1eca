"""Messages between tf2torch and a worker process, and the worker's side of the exchange.

A message is a JSON header, then `header["arrays"]` arrays in `.npy` format (read with
`allow_pickle=False`: nothing sent is ever executed), each a frame: an 8-byte big-endian
length and the bytes. The worker speaks first, once its runtime is imported; then it answers
each request with `{"ok": true, ...}` or `{"ok": false, "kind": <exception class>, "error":
<first line>}`. A request may list `drop`, objects the worker may free.

Only numpy and the standard library here: worker scripts import this module before their
runtime (TensorFlow, TFLite), and the parent's side is `references/worker_process.py`.
"""

from __future__ import annotations

import io
import json
import os
import struct
import sys
from collections.abc import Callable

import numpy as np

Message = tuple[dict, list[np.ndarray]]


def encode(header: dict, arrays: list[np.ndarray] | tuple[np.ndarray, ...] = ()) -> bytes:
    frames = [json.dumps({**header, "arrays": len(arrays)}).encode()]
    for array in arrays:
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        frames.append(buffer.getvalue())
    return b"".join(struct.pack(">Q", len(frame)) + frame for frame in frames)


def decode(read: Callable[[int], bytes]) -> Message | None:
    """The next message from `read(n)` (which returns at most n bytes, fewer only at the end
    of the stream); None when the stream ends before a message begins."""
    header = _frame(read)
    if header is None:
        return None
    fields = json.loads(header)
    arrays = []
    for _ in range(fields.get("arrays", 0)):
        frame = _frame(read)
        if frame is None:
            raise EOFError("the stream ended inside a message")
        arrays.append(np.load(io.BytesIO(frame), allow_pickle=False))
    return fields, arrays


def _frame(read: Callable[[int], bytes]) -> bytes | None:
    size = read(8)
    if len(size) < 8:
        return None
    length = struct.unpack(">Q", size)[0]
    data = read(length)
    if len(data) < length:
        raise EOFError("the stream ended inside a frame")
    return data


Handler = Callable[[dict, list[np.ndarray]], tuple[dict, list[np.ndarray]]]


def serve(handle: Handler, hello: dict, stamp: Callable[[], dict] | None = None) -> None:
    """The worker's loop on stdin/stdout: say `hello`, then answer each request with what
    `handle(header, arrays)` returns, or with the exception it raised, until stdin ends.
    `stamp()` adds fields to every answer (the worker's peak memory, say). Anything the
    runtime prints goes to stderr: stdout carries only messages."""
    requests, answers = sys.stdin.buffer, sys.__stdout__.buffer
    sys.stdout = sys.stderr

    def send(header: dict, arrays: list[np.ndarray] | tuple = ()) -> None:
        answers.write(encode({**header, **(stamp() if stamp else {})}, arrays))
        answers.flush()

    send({"ok": True, **hello})
    while (message := decode(requests.read)) is not None:
        header, arrays = message
        try:
            reply, out = handle(header, arrays)
            send({"ok": True, **reply}, out)
        except Exception as exc:  # reported to the parent, which raises a clear error
            send({"ok": False, "kind": type(exc).__name__,
                  "error": (str(exc).strip().splitlines() or [""])[0]})
    # stdin ended: the parent is done. A worker holds nothing to save, and its runtime's own
    # teardown (TensorFlow's destructors and thread pools) kept the parent's close waiting
    # 0.5 s, on `convert`'s critical path; the process ends here instead.
    sys.stderr.flush()
    os._exit(0)
