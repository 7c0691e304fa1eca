"""A minimal FlexBuffers reader: enough to decode the map a custom op keeps as its options.

FlexBuffers is the schemaless format TFLite custom ops use for `custom_options`. tf2torch
reads `.tflite` files without TensorFlow or the `flatbuffers` package, so this decodes the
subset published models use: maps, (typed) vectors, keys, strings, ints, floats and bools.
Layout (see flatbuffers' flexbuffers.h): the buffer ends with the root's value, its packed
type byte and the root's byte width; offsets point backwards from where they are stored.
"""

from __future__ import annotations

import struct
from typing import Any

# Value types (packed type byte >> 2).
_NULL, _INT, _UINT, _FLOAT, _KEY, _STRING = 0, 1, 2, 3, 4, 5
_INDIRECT_INT, _INDIRECT_UINT, _INDIRECT_FLOAT = 6, 7, 8
_MAP, _VECTOR = 9, 10
_VECTOR_INT, _VECTOR_KEY = 11, 14  # typed vectors: 11..15 element type = t - 10
_VECTOR_INT2, _VECTOR_FLOAT4 = 16, 24  # fixed-length typed vectors of 2, 3 or 4 elements
_BLOB, _BOOL, _VECTOR_BOOL = 25, 26, 36

_SIGNED = {1: "<b", 2: "<h", 4: "<i", 8: "<q"}
_UNSIGNED = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}
_FLOATS = {4: "<f", 8: "<d"}


def _read(data: bytes, pos: int, width: int, formats: dict[int, str]) -> Any:
    return struct.unpack_from(formats[width], data, pos)[0]


def _indirect(data: bytes, pos: int, width: int) -> int:
    """Where the offset stored at `pos` (in `width` bytes) points."""
    return pos - _read(data, pos, width, _UNSIGNED)


def _key(data: bytes, pos: int) -> str:
    return data[pos:data.index(b"\0", pos)].decode("utf-8")


# scalar types → how to read them: stored in place, or behind an offset
_INLINE = {_INT: _SIGNED, _UINT: _UNSIGNED, _FLOAT: _FLOATS}
_BEHIND_OFFSET = {_INDIRECT_INT: _SIGNED, _INDIRECT_UINT: _UNSIGNED, _INDIRECT_FLOAT: _FLOATS}


def _typed_vector(data: bytes, pos: int, width: int, elem_type: int, size: int) -> list[Any]:
    return [_value(data, pos + i * width, width, elem_type, width) for i in range(size)]


def _value(data: bytes, pos: int, parent_width: int, type_: int, width: int) -> Any:
    """The value stored at `pos` with `parent_width` bytes, of `type_`; `width` is the byte
    width of what an offset points to (the packed type's bit width)."""
    if type_ == _NULL:
        return None
    if type_ in _INLINE:
        return _read(data, pos, parent_width, _INLINE[type_])
    if type_ == _BOOL:
        return bool(_read(data, pos, parent_width, _UNSIGNED))
    target = _indirect(data, pos, parent_width)
    if type_ in _BEHIND_OFFSET:
        return _read(data, target, width, _BEHIND_OFFSET[type_])
    if type_ == _KEY:
        return _key(data, target)
    if _VECTOR_INT2 <= type_ <= _VECTOR_FLOAT4:  # fixed length: no size stored
        offset = type_ - _VECTOR_INT2
        return _typed_vector(data, target, width, offset % 3 + _INT, offset // 3 + 2)
    size = _read(data, target - width, width, _UNSIGNED)
    if type_ in (_STRING, _BLOB):
        raw = data[target:target + size]
        return raw.decode("utf-8") if type_ == _STRING else raw
    if type_ == _MAP:
        return _map(data, target, width, size)
    if type_ == _VECTOR:
        types = data[target + size * width:target + size * width + size]
        return [_value(data, target + i * width, width, t >> 2, 1 << (t & 3))
                for i, t in enumerate(types)]
    if _VECTOR_INT <= type_ <= _VECTOR_KEY:
        return _typed_vector(data, target, width, type_ - _VECTOR_INT + _INT, size)
    if type_ == _VECTOR_BOOL:
        return _typed_vector(data, target, width, _BOOL, size)
    raise ValueError(f"unsupported FlexBuffers type {type_}")


def _map(data: bytes, pos: int, width: int, size: int) -> dict[str, Any]:
    """A map: a vector of values preceded by (keys offset, keys byte width, size)."""
    keys_width = _read(data, pos - 2 * width, width, _UNSIGNED)
    keys_pos = _indirect(data, pos - 3 * width, width)
    keys = _typed_vector(data, keys_pos, keys_width, _KEY, size)
    types = data[pos + size * width:pos + size * width + size]
    return {key: _value(data, pos + i * width, width, t >> 2, 1 << (t & 3))
            for i, (key, t) in enumerate(zip(keys, types, strict=True))}


def loads(data: bytes) -> Any:
    """The root value of a FlexBuffers buffer as Python values (dict, list, str, int...)."""
    if len(data) < 3:
        raise ValueError("FlexBuffers buffer too short")
    root_width = data[-1]
    packed = data[-2]
    return _value(data, len(data) - 2 - root_width, root_width, packed >> 2, 1 << (packed & 3))
