"""Runs TensorFlow's TFLite interpreter for tf2torch, in a process of its own.

Started by `isolated_tflite.py` (which documents the protocol). A `.tflite` that crashes the
interpreter (a signal in its C++ kernels) kills this process, not the user's. It creates
interpreters on files the parent has validated, and calls only the interpreter methods in
`METHODS` on them; it executes nothing it is sent and reads arrays with
`allow_pickle=False`.
"""

import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.modules.setdefault("keras.src.optimizers", None)  # not needed to run a .tflite (1.5 s)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf2torch.util.frames import serve  # noqa: E402

METHODS = {"get_input_details", "get_output_details", "get_tensor_details",
           "get_signature_list", "_get_ops_details", "resize_tensor_input", "allocate_tensors",
           "reset_all_variables", "set_tensor", "invoke", "get_tensor"}


def decode(value, arrays):
    if isinstance(value, dict) and "__array__" in value:
        return arrays[value["__array__"]]
    if isinstance(value, list):
        return [decode(v, arrays) for v in value]
    return value


def encode(value, arrays):
    """JSON with arrays set aside as frames; numpy types by name."""
    if isinstance(value, np.ndarray):
        arrays.append(value)
        return {"__array__": len(arrays) - 1}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, type) and issubclass(value, np.generic):
        return {"__dtype__": np.dtype(value).name}
    if isinstance(value, dict):
        return {str(k): encode(v, arrays) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return {"__tuple__": [encode(v, arrays) for v in value]} if isinstance(value, tuple) \
            else [encode(v, arrays) for v in value]
    return value


def create(path, preserve_all, kernels):
    resolvers = tf.lite.experimental.OpResolverType
    options = {"experimental_preserve_all_tensors": True} if preserve_all else {}
    if kernels != "default":
        options["experimental_op_resolver_type"] = {
            "builtin": resolvers.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            "reference": resolvers.BUILTIN_REF}[kernels]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's own deprecation notice
        interpreter = tf.lite.Interpreter(model_path=path, num_threads=os.cpu_count(),
                                          **options)
    interpreter.allocate_tensors()
    return interpreter


class Worker:
    """Interpreters created here by id; only the methods in METHODS are called on them."""

    def __init__(self):
        self.interpreters, self.created = {}, 0

    def handle(self, header, arrays):
        for key in header.get("drop", ()):
            self.interpreters.pop(key, None)
        if header["op"] == "create":
            key, self.created = self.created, self.created + 1
            self.interpreters[key] = create(header["path"], header["preserve_all"],
                                            header["kernels"])
            return {"id": key}, []
        if header["op"] == "call" and header["method"] in METHODS:
            method = getattr(self.interpreters[header["id"]], header["method"])
            out = []
            result = encode(method(*decode(header["args"], arrays)), out)
            return {"result": result}, out
        raise ValueError("unknown request")


if __name__ == "__main__":
    serve(Worker().handle, {"tensorflow": tf.version.VERSION})
