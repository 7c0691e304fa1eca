"""Forms of a `.tflite` file for TFLite's interpreter to run: the dequantized float twin of a
quantized file, and a copy with every intermediate tensor exposed as an output.

The twin is the same graph with every quantized constant replaced by its float32 value
(the same values tf2torch's reader serves), every quantized tensor made float32, and every
QUANTIZE and int → float DEQUANTIZE removed. TFLite then runs it with its float kernels,
which gives two measurements no port can fake:
- the file against its twin: what quantization itself costs (the hybrid kernels of a
  weight-only model, the integer kernels of a full-integer one), from which the bound of
  the "within quantization error" status is derived (docs/tflite_compatibility.md);
- a float port against the twin: whether the conversion itself is exact (1e-4 bound).
Written with TensorFlow's own flatbuffer tools (imported lazily, only here).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from tf2torch.sources.tflite import quantization
from tf2torch.sources.tflite.opcodes import BUILTIN_OPS, NUMPY_DTYPES, TENSOR_TYPES
from tf2torch.sources.tflite.schema import Quantization

_FLOAT32 = 0  # TensorType.FLOAT32
_CODES = {name: code for code, name in BUILTIN_OPS.items()}
_QUANTIZE, _DEQUANTIZE = _CODES["QUANTIZE"], _CODES["DEQUANTIZE"]


def write_float_twin(path: str | Path, folder: str | Path | None = None) -> Path:
    """Write the twin of the file at `path` into `folder` (default: a new temporary folder,
    which the caller may delete once an interpreter has loaded the file)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    codes = [max(c.deprecatedBuiltinCode, c.builtinCode) for c in model.operatorCodes]
    for index, sub in enumerate(model.subgraphs):
        alias = _drop_conversions(sub, codes)
        for tensor in sub.tensors:
            _to_float(model, tensor)
        sub.outputs = [alias.get(i, i) for i in sub.outputs]
        for signature in model.signatureDefs or []:
            if signature.subgraphIndex == index:
                for entry in signature.outputs or []:
                    entry.tensorIndex = alias.get(entry.tensorIndex, entry.tensorIndex)
    target = Path(folder or tempfile.mkdtemp(prefix="tf2torch-twin-")) / (
        Path(path).stem + "-float-twin.tflite")
    flatbuffer_utils.write_model(model, str(target))
    return target


def write_exposed(path: str | Path, folder: str | Path, twin: bool = False) -> Path:
    """A copy of the file (or of its twin) whose every op output is also a model output, so
    the default runtime (XNNPACK, which keeps no intermediates) must produce them all:
    `--per-op` compares with the runtime verification uses, not with another one."""
    from tensorflow.lite.tools import flatbuffer_utils

    source = write_float_twin(path, folder) if twin else Path(path)
    model = flatbuffer_utils.read_model(str(source))
    for sub in model.subgraphs[:1]:
        outputs = list(sub.outputs)
        seen = set(outputs)
        for op in sub.operators:
            for i in op.outputs:
                if i >= 0 and i not in seen:
                    seen.add(i)
                    outputs.append(i)
        sub.outputs = outputs
    target = Path(folder) / (Path(path).stem + "-exposed.tflite")
    flatbuffer_utils.write_model(model, str(target))
    return target


def _is_quantized(tensor) -> bool:
    q = tensor.quantization
    dtype = TENSOR_TYPES.get(tensor.type, "")
    return (q is not None and q.scale is not None and len(q.scale) > 0
            and dtype in quantization.INTEGER_TYPES and any(s != 0 for s in q.scale))


def _drop_conversions(sub, codes: list[int]) -> dict[int, int]:
    """Remove QUANTIZE and int → float DEQUANTIZE ops; consumers read their input instead."""
    alias: dict[int, int] = {}
    kept = []
    for op in sub.operators:
        code = codes[op.opcodeIndex]
        source = alias.get(op.inputs[0], op.inputs[0]) if len(op.inputs) else -1
        converts = code == _QUANTIZE or (code == _DEQUANTIZE and source >= 0
                                         and _is_quantized(sub.tensors[op.inputs[0]]))
        if converts:
            alias[op.outputs[0]] = source
            continue
        op.inputs = [alias.get(i, i) for i in op.inputs]
        kept.append(op)
    sub.operators = kept
    return alias


def _to_float(model, tensor) -> None:
    if not _is_quantized(tensor):
        return
    dtype = TENSOR_TYPES[tensor.type]
    buffer = model.buffers[tensor.buffer] if tensor.buffer else None
    if buffer is not None and buffer.data is not None and len(buffer.data):
        raw = np.asarray(buffer.data, np.uint8)
        count = int(np.prod(tensor.shape, dtype=np.int64))
        if dtype == "INT4":
            values = quantization.unpack_int4(raw, count)
        else:
            values = raw.view(np.dtype(NUMPY_DTYPES[dtype]))[:count]
        q = tensor.quantization
        params = Quantization(tuple(q.scale), tuple(q.zeroPoint if q.zeroPoint is not None
                                                    else [0] * len(q.scale)),
                              q.quantizedDimension)
        real = quantization.dequantize(values.reshape(tensor.shape), params, dtype)
        # a buffer of its own: the converter shares one buffer between equal constants,
        # which may have different scales
        from tensorflow.lite.python import schema_py_generated as schema

        fresh = schema.BufferT()
        fresh.data = np.frombuffer(real.astype("<f4").tobytes(), np.uint8)
        model.buffers.append(fresh)
        tensor.buffer = len(model.buffers) - 1
    tensor.type = _FLOAT32
    tensor.quantization = None
