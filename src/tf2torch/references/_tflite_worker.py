"""Runs TensorFlow's TFLite interpreter for tf2torch, in a process of its own.

Started by `isolated_tflite.py` (which documents the protocol). A `.tflite` that crashes the
interpreter (a signal in its C++ kernels) kills this process, not the user's. It creates
interpreters on files the parent has validated, and calls only the interpreter methods in
`METHODS` on them; it executes nothing it is sent and reads arrays with
`allow_pickle=False`.
"""

import io
import json
import os
import struct
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.modules.setdefault("keras.src.optimizers", None)  # not needed to run a .tflite (1.5 s)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

_IN, _OUT = sys.stdin.buffer, sys.stdout.buffer
sys.stdout = sys.stderr  # anything a library prints must not corrupt the replies
METHODS = {"get_input_details", "get_output_details", "get_tensor_details",
           "get_signature_list", "_get_ops_details", "resize_tensor_input", "allocate_tensors",
           "reset_all_variables", "set_tensor", "invoke", "get_tensor"}


def read_frame():
    size = _IN.read(8)
    return None if len(size) < 8 else _IN.read(struct.unpack(">Q", size)[0])


def write_frame(data):
    _OUT.write(struct.pack(">Q", len(data)) + data)


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


def send(header, arrays=()):
    write_frame(json.dumps({**header, "arrays": len(arrays)}).encode())
    for array in arrays:
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
        write_frame(buffer.getvalue())
    _OUT.flush()


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


def main():
    interpreters = {}
    created = 0
    send({"ok": True, "tensorflow": tf.version.VERSION})
    while True:
        header = read_frame()
        if header is None:
            return
        header = json.loads(header)
        arrays = [np.load(io.BytesIO(read_frame()), allow_pickle=False)
                  for _ in range(header.get("arrays", 0))]
        for key in header.get("drop", ()):
            interpreters.pop(key, None)
        try:
            if header["op"] == "create":
                key, created = created, created + 1
                interpreters[key] = create(header["path"], header["preserve_all"],
                                           header["kernels"])
                send({"ok": True, "id": key})
            elif header["op"] == "call" and header["method"] in METHODS:
                method = getattr(interpreters[header["id"]], header["method"])
                out = []
                result = encode(method(*decode(header["args"], arrays)), out)
                send({"ok": True, "result": result}, out)
            else:
                send({"ok": False, "kind": "ValueError", "error": "unknown request"})
        except Exception as exc:  # reported to the parent, which raises a clear error
            send({"ok": False, "kind": type(exc).__name__,
                  "error": (str(exc).strip().splitlines() or [""])[0]})


if __name__ == "__main__":
    main()
