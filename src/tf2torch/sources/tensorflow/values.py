"""TensorFlow's data types, tensors, shapes and attribute values as numpy / Python values."""

from __future__ import annotations

from typing import Any

import numpy as np

# tensorflow.DataType → numpy dtype, for the types a graph computes with.
DTYPES: dict[int, np.dtype] = {
    1: np.dtype(np.float32), 2: np.dtype(np.float64), 3: np.dtype(np.int32),
    4: np.dtype(np.uint8), 5: np.dtype(np.int16), 6: np.dtype(np.int8),
    7: np.dtype(object), 8: np.dtype(np.complex64), 9: np.dtype(np.int64),
    10: np.dtype(np.bool_), 14: np.dtype(np.float32),  # bfloat16: widened on read
    17: np.dtype(np.uint16), 18: np.dtype(np.complex128), 19: np.dtype(np.float16),
    22: np.dtype(np.uint32), 23: np.dtype(np.uint64),
}
NAMES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8",
         7: "string", 8: "complex64", 9: "int64", 10: "bool", 11: "qint8", 12: "quint8",
         13: "qint32", 14: "bfloat16", 15: "qint16", 16: "quint16", 17: "uint16",
         18: "complex128", 19: "float16", 20: "resource", 21: "variant", 22: "uint32",
         23: "uint64"}
RESOURCE, VARIANT, STRING = 20, 21, 7
_REF_OFFSET = 100  # DT_FLOAT_REF = 101: a TF1 variable's reference type

# The repeated field of TensorProto holding each dtype's values (when not in tensor_content).
_VALUE_FIELDS = {1: "float_val", 2: "double_val", 3: "int_val", 4: "int_val", 5: "int_val",
                 6: "int_val", 7: "string_val", 9: "int64_val", 10: "bool_val",
                 17: "int_val", 19: "half_val", 14: "half_val", 22: "uint32_val",
                 23: "uint64_val"}


def base_type(dtype: int) -> int:
    return dtype - _REF_OFFSET if dtype > _REF_OFFSET else dtype


def dtype_name(dtype: int) -> str:
    return NAMES.get(base_type(dtype), f"DataType {dtype}")


def shape_of(proto: Any) -> tuple[int | None, ...] | None:
    """A TensorShapeProto: None for unknown rank, None for each unknown (-1) dimension."""
    if proto.unknown_rank:
        return None
    return tuple(None if d.size < 0 else int(d.size) for d in proto.dim)


def tensor_value(proto: Any) -> np.ndarray:
    """A TensorProto's value (raises ValueError for a dtype numpy cannot hold)."""
    dtype = base_type(proto.dtype)
    if dtype not in DTYPES:
        raise ValueError(f"constant of type {dtype_name(dtype)}")
    shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
    count = int(np.prod(shape, dtype=np.int64))
    if proto.tensor_content:
        return _from_bytes(proto.tensor_content, dtype).reshape(shape)
    values = list(getattr(proto, _VALUE_FIELDS[dtype])) if dtype in _VALUE_FIELDS else []
    if dtype == STRING:
        out = np.empty(len(values), object)
        out[:] = [bytes(v) for v in values]
        return out.reshape(shape) if len(values) == count else np.full(shape, b"", object)
    if dtype in (19, 14):  # half / bfloat16 values travel as the 16 bits in an int32
        bits = np.asarray(values, np.uint16)
        array = bits.view(np.float16).astype(np.float32) if dtype == 19 else \
            (bits.astype(np.uint32) << 16).view(np.float32)
    else:
        array = np.asarray(values, DTYPES[dtype])
    if array.size == count:
        return array.reshape(shape)
    # TF stores a tensor of identical values once (the last value repeats to fill it).
    fill = array[-1] if array.size else np.zeros((), DTYPES[dtype])
    out = np.empty(count, DTYPES[dtype])
    out[:array.size] = array
    out[array.size:] = fill
    return out.reshape(shape)


def _from_bytes(raw: bytes, dtype: int) -> np.ndarray:
    if dtype == 14:
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
    if dtype == 19:
        return np.frombuffer(raw, "<f2").astype(np.float32)
    return np.frombuffer(raw, DTYPES[dtype].newbyteorder("<")).astype(DTYPES[dtype])


def attr_value(attr: Any) -> Any:
    """An AttrValue as a plain Python value (tensors as numpy arrays, functions by name)."""
    kind = attr.WhichOneof("value")
    if kind is None:
        return None
    if kind == "list":
        lst = attr.list
        for field in ("s", "i", "f", "b", "type", "shape", "tensor", "func"):
            items = list(getattr(lst, field))
            if items:
                return [_scalar(field, item) for item in items]
        return []
    return _scalar(kind, getattr(attr, kind))


def _scalar(kind: str, value: Any) -> Any:
    if kind == "s":
        return bytes(value).decode("utf-8", "replace")
    if kind == "shape":
        return shape_of(value)
    if kind == "tensor":
        return value  # decoded lazily: a Const may be large
    if kind == "func":
        return value.name
    if kind == "f":
        return float(value)
    if kind in ("i", "type"):
        return int(value)
    return value
