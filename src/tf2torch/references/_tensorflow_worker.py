"""Runs a frozen TensorFlow graph for tf2torch, in a process of its own.

Started by `tensorflow_worker.py` (which documents the protocol) at the start of a
conversion: it imports TensorFlow straight away, while the parent imports torch and converts,
then answers requests on stdin/stdout. Needs only numpy and TensorFlow; executes nothing it
is sent, and reads arrays with `allow_pickle=False`.
"""

import io
import json
import os
import resource
import struct
import sys
import time

started = time.perf_counter()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow's __init__ imports Keras eagerly, to register optimizers for SavedModel loading
# (1.5 s and 50 MB here); a frozen graph needs none of it, and TF goes on without it.
sys.modules.setdefault("keras.src.optimizers", None)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

IMPORT_S = time.perf_counter() - started
_IN, _OUT = sys.stdin.buffer, sys.stdout.buffer
sys.stdout = sys.stderr  # anything a library prints must not corrupt the replies


def read_frame():
    size = _IN.read(8)
    return None if len(size) < 8 else _IN.read(struct.unpack(">Q", size)[0])


def write_frame(data):
    _OUT.write(struct.pack(">Q", len(data)) + data)


def receive():
    header = read_frame()
    if header is None:
        return None, []
    header = json.loads(header)
    arrays = [np.load(io.BytesIO(read_frame()), allow_pickle=False)
              for _ in range(header.get("arrays", 0))]
    return header, arrays


def send(header, arrays=()):
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    write_frame(json.dumps({**header, "arrays": len(arrays), "peak_rss_mib": peak_mib}).encode())
    for array in arrays:
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        write_frame(buffer.getvalue())
    _OUT.flush()


def load(path):
    """The graph's one Placeholder in; the last Softmax's output (probabilities) and its input
    (logits) out, as `references.tensorflow.frozen_graph_reference` runs it in-process."""
    graph_def = tf.compat.v1.GraphDef()
    with open(path, "rb") as f:
        graph_def.ParseFromString(f.read())
    placeholders = [n.name for n in graph_def.node if n.op == "Placeholder"]
    softmaxes = [n for n in graph_def.node if n.op == "Softmax"]
    if len(placeholders) != 1 or not softmaxes:
        raise ValueError(f"expected one Placeholder input and a Softmax output, found "
                         f"{len(placeholders)} placeholder(s) and {len(softmaxes)} softmax(es)")
    wrapped = tf.compat.v1.wrap_function(
        lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    fetches = [f"{softmaxes[-1].name}:0", softmaxes[-1].input[0]]
    return wrapped.prune(
        feeds=[wrapped.graph.get_tensor_by_name(f"{placeholders[0]}:0")],
        fetches=[wrapped.graph.get_tensor_by_name(f if ":" in f else f + ":0")
                 for f in fetches])


def main():
    graph = None
    send({"ok": True, "import_s": IMPORT_S, "tensorflow": tf.version.VERSION})
    while True:
        header, arrays = receive()
        if header is None:
            return
        began = time.perf_counter()
        try:
            if header["op"] == "load":
                graph = load(header["path"])
                send({"ok": True, "seconds": time.perf_counter() - began})
            elif header["op"] == "run":
                batch = arrays[0]
                probs, logits = (np.asarray(t).reshape(len(batch), -1)
                                 for t in graph(tf.constant(batch)))
                send({"ok": True, "seconds": time.perf_counter() - began,
                      "names": ["logits", "probabilities"]}, [logits, probs])
            else:
                send({"ok": False, "error": f"unknown request {header['op']!r}"})
        except Exception as exc:  # reported to the parent, which raises it as a SourceError
            send({"ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]})


if __name__ == "__main__":
    main()
