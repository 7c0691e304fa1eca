"""Runs TensorFlow references for tf2torch in a process of its own: TF graphs (SavedModel,
frozen GraphDef, meta graph), Keras models, and the layer-by-layer taps of a Keras model or
a frozen graph.

Started by `isolated.py`; answers with `util/frames.py`'s `serve`. Graphs are opened with
tf2torch's own reader (which checks them as graphs first) and run by `tensorflow_graph.py`'s
references; Keras files are loaded by Keras in safe mode (no code from the file runs) after
the parent's reader accepted them. An abort or a signal in TensorFlow's kernels ends this
process, not the user's. Reads arrays with `allow_pickle=False`; executes nothing it is sent.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import torch  # noqa: F401 - torch before tensorflow, always

from tf2torch.references.keras import load_keras_runner
from tf2torch.references.layers import layer_reference
from tf2torch.references.tensorflow_graph import (
    tf_graph_intermediates,
    tf_graph_runner,
)
from tf2torch.sources import open_source
from tf2torch.util.frames import serve


class Worker:
    """Objects opened here by id: a graph's source (run by a cached runner), a Keras
    runner, a layer reference."""

    def __init__(self):
        self.objects, self.runners, self.opened = {}, {}, 0

    def handle(self, header, arrays):
        for key in header.get("drop", ()):
            self.objects.pop(key, None)
            self.runners.pop(key, None)
        op = header["op"]
        if op.startswith("open"):
            key, self.opened = self.opened, self.opened + 1
            self.objects[key] = self.open(op, header)
            found = self.objects[key]
            return {"id": key, "description": getattr(found, "description", "")}, []
        found = self.objects[header["id"]]
        if op == "run":
            key = header["id"]
            self.runners[key] = self.runners.get(key) or tf_graph_runner(found)
            return named(self.runners[key](arrays))
        if op == "intermediates":
            return named(tf_graph_intermediates(found, arrays))
        if op == "keras":
            return named(found(arrays))
        if op == "locate":
            located = found.locate(header["names"])
            return {"located": located,
                    "labels": {own: found.label(own) for own in located.values()}}, []
        if op == "stream":
            out = {}
            found.stream(arrays[0], set(header["wanted"]), out.__setitem__)
            return named(out)
        raise ValueError("unknown request")

    @staticmethod
    def open(op, header):
        if op == "open_graph":
            return open_source(header["path"], signature=header.get("signature"))
        if op == "open_keras":
            return load_keras_runner(header["path"], header["keras_major"], header["outputs"])
        if op == "open_layers":
            return layer_reference(header["kind"], header["path"])
        raise ValueError("unknown request")


def named(out):
    """Arrays in the order they were produced (the stream's emit order is execution order)."""
    return {"names": list(out)}, [np.asarray(v) for v in out.values()]


if __name__ == "__main__":
    serve(Worker().handle, {})
