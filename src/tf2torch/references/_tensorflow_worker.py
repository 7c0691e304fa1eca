"""Runs a frozen TensorFlow graph for tf2torch, in a process of its own.

Started by `tensorflow_worker.py` at the start of a conversion: it imports TensorFlow
straight away, while the parent imports torch and converts, then answers requests with
`util/frames.py`'s `serve`. Needs only numpy, TensorFlow and that module (not torch);
executes nothing it is sent, and reads arrays with `allow_pickle=False`.
"""

import os
import resource
import sys
import time

started = time.perf_counter()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow's __init__ imports Keras eagerly, to register optimizers for SavedModel loading
# (1.5 s and 50 MB here); a frozen graph needs none of it, and TF goes on without it.
sys.modules.setdefault("keras.src.optimizers", None)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf2torch.util.frames import serve  # noqa: E402

IMPORT_S = time.perf_counter() - started


def peak_memory():
    return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # KiB


def load(path):
    """The graph's one Placeholder in; the last Softmax's output (probabilities) and its input
    (logits) out, as `references.tensorflow.frozen_graph_reference` runs it in-process.

    A plain TF1 session on the imported graph, the GraphDef freed once imported: the worker
    peaked at 936 MiB here this way, against 1061 MiB through `wrap_function` + `prune`
    (which keep the GraphDef and copy the graph), for the same outputs bit for bit."""
    graph_def = tf.compat.v1.GraphDef()
    with open(path, "rb") as f:
        graph_def.ParseFromString(f.read())
    placeholders = [n.name for n in graph_def.node if n.op == "Placeholder"]
    softmaxes = [n for n in graph_def.node if n.op == "Softmax"]
    if len(placeholders) != 1 or not softmaxes:
        raise ValueError(f"expected one Placeholder input and a Softmax output, found "
                         f"{len(placeholders)} placeholder(s) and {len(softmaxes)} softmax(es)")
    fetches = [f"{softmaxes[-1].name}:0", softmaxes[-1].input[0]]
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    del graph_def
    session = tf.compat.v1.Session(graph=graph)
    feed = graph.get_tensor_by_name(f"{placeholders[0]}:0")
    outputs = [graph.get_tensor_by_name(f if ":" in f else f + ":0") for f in fetches]
    return lambda batch: session.run(outputs, {feed: batch})


class Worker:
    def __init__(self):
        self.graph = None

    def handle(self, header, arrays):
        began = time.perf_counter()
        if header["op"] == "load":
            self.graph = load(header["path"])
            return {"seconds": time.perf_counter() - began}, []
        if header["op"] == "run":
            batch = arrays[0]
            probs, logits = (np.asarray(t).reshape(len(batch), -1) for t in self.graph(batch))
            return {"seconds": time.perf_counter() - began,
                    "names": ["logits", "probabilities"]}, [logits, probs]
        raise ValueError(f"unknown request {header['op']!r}")


if __name__ == "__main__":
    serve(Worker().handle, {"import_s": IMPORT_S, "tensorflow": tf.version.VERSION},
          peak_memory)
