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


def import_graph_runtime():
    """TensorFlow's TF1 graph runtime without `tensorflow/__init__.py`, which imports the
    whole public API (2400 modules: 2.3 s and 135 MiB here, of a 3.7 s, 580 MiB import)
    where a frozen graph needs a graph, a session and two protos. The package is entered
    through a bare module that holds only its path, so its submodules import as usual; the
    few names `load_graph_def`, `frozen_function` and `constants_as_placeholders` use come
    back at their public spelling. A TensorFlow that moved them gets the full import.
    Only here, in a process of its own: the bare module hides the API from all else."""
    import importlib.util
    from types import SimpleNamespace

    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("TensorFlow is not installed: pip install 'tf2torch[tf]'")
    bare = type(sys)("tensorflow")
    bare.__path__ = list(spec.submodule_search_locations)
    sys.modules["tensorflow"] = bare
    try:
        from tensorflow.core.framework.graph_pb2 import GraphDef
        from tensorflow.core.protobuf.config_pb2 import ConfigProto
        from tensorflow.python.client.session import Session
        from tensorflow.python.framework.importer import import_graph_def
        from tensorflow.python.framework.ops import Graph
        from tensorflow.python.framework.tensor_util import MakeNdarray
        from tensorflow.python.framework.versions import VERSION
    except (ImportError, AttributeError):
        del sys.modules["tensorflow"]
        # its __init__ imports Keras eagerly, to register optimizers for SavedModel loading
        # (1.5 s and 50 MB here); a frozen graph needs none of it, and TF goes on without it
        sys.modules.setdefault("keras.src.optimizers", None)
        import tensorflow

        return tensorflow, "full"
    v1 = SimpleNamespace(GraphDef=GraphDef, ConfigProto=ConfigProto, Session=Session,
                         import_graph_def=import_graph_def)
    return SimpleNamespace(Graph=Graph, make_ndarray=MakeNdarray, compat=SimpleNamespace(v1=v1),
                           version=SimpleNamespace(VERSION=VERSION)), "graph runtime only"


import numpy as np  # noqa: E402

tf, TF_IMPORTED = import_graph_runtime()

from tf2torch.references.tensorflow import (  # noqa: E402 - no torch: TF is imported
    constants_as_placeholders,
    frozen_function,
    load_graph_def,
    slim_endpoints,
)
from tf2torch.util.frames import serve  # noqa: E402

IMPORT_S = time.perf_counter() - started


def peak_memory():
    return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # KiB


def load(path):
    """`references.tensorflow.frozen_graph_reference`, here: the graph's one Placeholder in;
    the last Softmax's output (probabilities) and its input (logits) out. The GraphDef is
    freed once imported, its weights fed with each run (`constants_as_placeholders`). The
    graph runs as written, each node by TensorFlow's own kernel: Grappler's rewrites
    (folding, fusing) cost the first run 165 MB more (the worker peaked at 884 MiB against
    720 with the slim 1.4_224 graph, BENCHMARKS.md) and are not the graph the release ships."""
    graph_def = load_graph_def(path, tf)
    feed, fetches = slim_endpoints(graph_def, path)
    constants = constants_as_placeholders(tf, graph_def)
    return frozen_function(tf, graph_def, [feed], fetches, rewrite=False, constants=constants)


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
            probs, logits = (np.asarray(t).reshape(len(batch), -1)
                             for t in self.graph([batch]))
            return {"seconds": time.perf_counter() - began,
                    "names": ["logits", "probabilities"]}, [logits, probs]
        raise ValueError(f"unknown request {header['op']!r}")


if __name__ == "__main__":
    serve(Worker().handle, {"import_s": IMPORT_S, "tensorflow": tf.version.VERSION,
                            "imported": TF_IMPORTED},
          peak_memory)
