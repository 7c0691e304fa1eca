"""Runs a TensorFlow graph (SavedModel, frozen GraphDef, meta graph) for tf2torch, in a
process of its own.

Started by `isolated_graph.py`; speaks the frames of `worker_process.py`. It opens the file
with tf2torch's own reader (which checks it as a graph first) and runs it with the
in-process references of `tensorflow_graph.py`, so an abort or a signal in TensorFlow's
kernels ends this process, not the user's. Reads arrays with `allow_pickle=False`; executes
nothing it is sent.
"""

import io
import json
import os
import struct
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import torch  # noqa: F401 - torch before tensorflow, always

from tf2torch.references.tensorflow_graph import (
    tf_graph_intermediates,
    tf_graph_runner,
)
from tf2torch.sources import open_source

_IN, _OUT = sys.stdin.buffer, sys.stdout.buffer
sys.stdout = sys.stderr  # anything a library prints must not corrupt the replies


def read_frame():
    size = _IN.read(8)
    return None if len(size) < 8 else _IN.read(struct.unpack(">Q", size)[0])


def send(header, arrays=()):
    frames = [json.dumps({**header, "arrays": len(arrays)}).encode()]
    for array in arrays:
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        frames.append(buffer.getvalue())
    for frame in frames:
        _OUT.write(struct.pack(">Q", len(frame)) + frame)
    _OUT.flush()


def main():
    sources, runners, opened = {}, {}, 0
    send({"ok": True})
    while True:
        header = read_frame()
        if header is None:
            return
        header = json.loads(header)
        arrays = [np.load(io.BytesIO(read_frame()), allow_pickle=False)
                  for _ in range(header.get("arrays", 0))]
        for key in header.get("drop", ()):
            sources.pop(key, None)
            runners.pop(key, None)
        try:
            if header["op"] == "open":
                key, opened = opened, opened + 1
                sources[key] = open_source(header["path"], signature=header.get("signature"))
                send({"ok": True, "id": key})
            elif header["op"] == "run":
                key = header["id"]
                runners[key] = runners.get(key) or tf_graph_runner(sources[key])
                out = runners[key](arrays)
                send({"ok": True, "names": list(out)}, list(out.values()))
            elif header["op"] == "intermediates":
                out = tf_graph_intermediates(sources[header["id"]], arrays)
                send({"ok": True, "names": list(out)}, list(out.values()))
            else:
                send({"ok": False, "kind": "ValueError", "error": "unknown request"})
        except Exception as exc:  # reported to the parent, which raises a clear error
            send({"ok": False, "kind": type(exc).__name__,
                  "error": (str(exc).strip().splitlines() or [""])[0]})


if __name__ == "__main__":
    main()
