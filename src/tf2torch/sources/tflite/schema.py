"""The TFLite flatbuffer schema, read with `struct` and numpy only (no TensorFlow, no codegen).

A flatbuffer table starts with an int32 offset back to its vtable; the vtable lists, per
field id, the field's offset inside the table (0 = absent, use the schema default). Offsets
to sub-tables, vectors and strings are uint32, relative to where they are stored. Field ids
follow `tensorflow/lite/schema/schema.fbs` (a union field takes two ids: type, then value).
Every read is bounds-checked, so a truncated or corrupt file raises `SourceError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tf2torch.errors import SourceError
from tf2torch.sources.tflite.opcodes import BUILTIN_OPS, OPTIONS, TENSOR_TYPES

_FILE_IDENTIFIER = b"TFL3"


class Table:
    """One flatbuffer table: typed field access by field id, with schema defaults."""

    __slots__ = ("_vsize", "_vtable", "buf", "pos")

    def __init__(self, buf: memoryview, pos: int) -> None:
        self.buf, self.pos = buf, pos
        self._vtable = pos - _unpack(buf, "<i", pos)
        self._vsize = _unpack(buf, "<H", self._vtable)

    def _field(self, fid: int) -> int:
        slot = 4 + 2 * fid
        if slot >= self._vsize:
            return 0
        off = _unpack(self.buf, "<H", self._vtable + slot)
        return self.pos + off if off else 0

    def scalar(self, fid: int, fmt: str, default: Any = 0) -> Any:
        at = self._field(fid)
        return _unpack(self.buf, "<" + fmt, at) if at else default

    def _indirect(self, at: int) -> int:
        return at + _unpack(self.buf, "<I", at)

    def table(self, fid: int) -> Table | None:
        at = self._field(fid)
        return Table(self.buf, self._indirect(at)) if at else None

    def string(self, fid: int) -> str | None:
        raw = self.bytes_(fid)
        return None if raw is None else raw.decode("utf-8", errors="replace")

    def _vector(self, fid: int) -> tuple[int, int] | None:
        at = self._field(fid)
        if not at:
            return None
        start = self._indirect(at)
        return start + 4, _unpack(self.buf, "<I", start)

    def bytes_(self, fid: int) -> bytes | None:
        vec = self._vector(fid)
        if vec is None:
            return None
        start, n = vec
        _check(self.buf, start, n)
        return bytes(self.buf[start:start + n])

    def vector_span(self, fid: int) -> tuple[int, int]:
        """(file offset, length in bytes) of a ubyte vector; (0, 0) when absent."""
        vec = self._vector(fid)
        if vec is None:
            return 0, 0
        _check(self.buf, vec[0], vec[1])
        return vec

    def numbers(self, fid: int, dtype: str) -> list:
        vec = self._vector(fid)
        if vec is None:
            return []
        start, n = vec
        dt = np.dtype(dtype).newbyteorder("<")
        _check(self.buf, start, n * dt.itemsize)
        return np.frombuffer(self.buf, dt, n, start).tolist()

    def tables(self, fid: int) -> list[Table]:
        vec = self._vector(fid)
        if vec is None:
            return []
        start, n = vec
        _check(self.buf, start, 4 * n)
        return [Table(self.buf, self._indirect(start + 4 * i)) for i in range(n)]


def _check(buf: memoryview, start: int, size: int) -> None:
    if start < 0 or size < 0 or start + size > len(buf):
        raise SourceError(f"TFLite file is truncated or corrupt (read of {size} bytes at "
                          f"{start} past its end, {len(buf)} bytes)")


def _unpack(buf: memoryview, fmt: str, at: int) -> Any:
    _check(buf, at, struct.calcsize(fmt))
    return struct.unpack_from(fmt, buf, at)[0]


# ---- the parsed model -------------------------------------------------------------------

@dataclass(frozen=True)
class Quantization:
    """real = scale · (q − zero_point); per-channel parameters run along `axis`."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0


@dataclass(frozen=True)
class Sparsity:
    """A sparse constant's layout (TACO-style): per traversal level either a dense size or
    CSR segments + indices; block dims come after the original dims."""

    traversal_order: tuple[int, ...]
    block_map: tuple[int, ...]
    levels: tuple[tuple[int, tuple[int, ...], tuple[int, ...]], ...]  # (dense_size, seg, idx)


@dataclass(frozen=True)
class TflTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    dtype: str  # TensorType name, e.g. "FLOAT32"
    buffer: int
    quantization: Quantization | None
    is_variable: bool
    sparsity: Sparsity | None = None


@dataclass(frozen=True)
class TflOperator:
    index: int
    op: str  # builtin name ("CONV_2D") or the custom code of a CUSTOM op
    version: int
    inputs: tuple[int, ...]  # -1 = optional input left out
    outputs: tuple[int, ...]
    options: dict[str, Any]
    custom_options: bytes | None
    is_custom: bool
    shared: str | None = None  # an unrolled loop's op: the module every iteration shares
    unrolled: bool = False  # inlined from a loop body (its recorded shapes may be stale)


@dataclass(frozen=True)
class TflSubgraph:
    name: str
    tensors: list[TflTensor]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    operators: list[TflOperator]


@dataclass(frozen=True)
class BufferSpan:
    """Where a buffer's bytes are in the file: inline vector or the large-model offset form."""

    offset: int
    size: int


@dataclass(frozen=True)
class SignatureDef:
    key: str
    subgraph: int
    inputs: dict[str, int]  # signature name → tensor index
    outputs: dict[str, int]


@dataclass
class TflModel:
    version: int
    description: str
    subgraphs: list[TflSubgraph]
    buffers: list[BufferSpan]
    metadata: dict[str, int] = field(default_factory=dict)  # name → buffer index
    signatures: list[SignatureDef] = field(default_factory=list)


def parse_model(buf: memoryview) -> TflModel:
    """Parse the whole flatbuffer structure (not the weight bytes) of a `.tflite` file."""
    if len(buf) < 8:
        raise SourceError(f"not a TFLite file: only {len(buf)} bytes")
    if bytes(buf[4:8]) != _FILE_IDENTIFIER:
        raise SourceError(f"not a TFLite file: identifier {bytes(buf[4:8])!r}, expected 'TFL3'")
    try:
        root = Table(buf, _unpack(buf, "<I", 0))
        codes = [_opcode(t) for t in root.tables(1)]
        model = TflModel(
            version=root.scalar(0, "I"),
            description=root.string(3) or "",
            subgraphs=[_subgraph(t, codes) for t in root.tables(2)],
            buffers=[_buffer(t) for t in root.tables(4)],
            metadata={t.string(0) or "": t.scalar(1, "I") for t in root.tables(6)},
            signatures=[_signature(t) for t in root.tables(7)],
        )
    except (struct.error, ValueError, IndexError, UnicodeError) as err:
        raise SourceError(f"TFLite file is corrupt: {err}") from err
    if not model.subgraphs:
        raise SourceError("TFLite file has no subgraph")
    for span in model.buffers:
        _check(buf, span.offset, span.size)
    return model


def _opcode(t: Table) -> tuple[str, int, bool]:
    # Codes > 127 live in `builtin_code`; old files only set the int8 deprecated field.
    code = max(t.scalar(0, "b", 0), t.scalar(3, "i", 0))
    version = t.scalar(2, "i", 1)
    if code == 32:  # CUSTOM
        return t.string(1) or "CUSTOM", version, True
    return BUILTIN_OPS.get(code, f"BUILTIN_{code}"), version, False


def _subgraph(t: Table, codes: list[tuple[str, int, bool]]) -> TflSubgraph:
    tensors = [_tensor(i, tt) for i, tt in enumerate(t.tables(0))]
    ops = [_operator(i, ot, codes) for i, ot in enumerate(t.tables(3))]
    return TflSubgraph(t.string(4) or "", tensors, tuple(t.numbers(1, "i4")),
                       tuple(t.numbers(2, "i4")), ops)


def _tensor(index: int, t: Table) -> TflTensor:
    type_code = t.scalar(1, "b", 0)
    shape = tuple(t.numbers(0, "i4"))
    quant = None
    q = t.table(4)
    if q is not None:
        scale = tuple(q.numbers(2, "f4"))
        if scale:
            quant = Quantization(scale, tuple(q.numbers(3, "i8")) or (0,) * len(scale),
                                 q.scalar(6, "i", 0))
    return TflTensor(
        index=index, name=t.string(3) or f"tensor_{index}", shape=shape,
        shape_signature=tuple(t.numbers(7, "i4")) or shape,
        dtype=TENSOR_TYPES.get(type_code, f"TYPE_{type_code}"), buffer=t.scalar(2, "I"),
        quantization=quant, is_variable=bool(t.scalar(5, "B", 0)),
        sparsity=_sparsity(t.table(6)),
    )


# SparseIndexVector union: Int32Vector, Uint16Vector, Uint8Vector (each: `values` vector).
_INDEX_TYPES = {1: "i4", 2: "u2", 3: "u1"}


def _sparsity(t: Table | None) -> Sparsity | None:
    if t is None:
        return None
    levels = []
    for dim in t.tables(2):
        if dim.scalar(0, "b", 0) == 0:  # DENSE
            levels.append((dim.scalar(1, "i", 0), (), ()))
            continue
        arrays = []
        for type_fid, value_fid in ((2, 3), (4, 5)):
            kind = _INDEX_TYPES.get(dim.scalar(type_fid, "B", 0))
            table = dim.table(value_fid)
            if kind is None or table is None:
                raise SourceError("sparse tensor with an unknown index vector type")
            arrays.append(tuple(table.numbers(0, kind)))
        levels.append((0, arrays[0], arrays[1]))
    return Sparsity(tuple(t.numbers(0, "i4")), tuple(t.numbers(1, "i4")), tuple(levels))


def _operator(index: int, t: Table, codes: list[tuple[str, int, bool]]) -> TflOperator:
    opcode = t.scalar(0, "I")
    if opcode >= len(codes):
        raise SourceError(f"operator {index} uses opcode {opcode}, file has {len(codes)}")
    name, version, custom = codes[opcode]
    options = _options(name, t.table(4)) if not custom else {}
    custom_options = t.bytes_(5)
    large_offset, large_size = t.scalar(9, "Q", 0), t.scalar(10, "Q", 0)
    if custom and custom_options is None and large_size:
        _check(t.buf, large_offset, large_size)
        custom_options = bytes(t.buf[large_offset:large_offset + large_size])
    return TflOperator(index, name, version, tuple(t.numbers(1, "i4")),
                       tuple(t.numbers(2, "i4")), options, custom_options, custom)


def _options(op: str, t: Table | None) -> dict[str, Any]:
    """The op's builtin options as a dict, schema defaults filled in for absent fields."""
    fields = OPTIONS.get(op, ())
    result: dict[str, Any] = {}
    for fid, (name, fmt, default) in enumerate(fields):
        if name is None:  # deprecated slot
            continue
        if fmt.startswith("["):
            result[name] = t.numbers(fid, fmt[1:]) if t is not None else []
        else:
            result[name] = t.scalar(fid, fmt, default) if t is not None else default
    return result


def _buffer(t: Table) -> BufferSpan:
    offset, size = t.vector_span(0)
    big_offset = t.scalar(1, "Q", 0)
    if big_offset > 1:  # large models (> 2 GB) keep weights after the flatbuffer
        return BufferSpan(big_offset, t.scalar(2, "Q", 0))
    return BufferSpan(offset, size)


def _signature(t: Table) -> SignatureDef:
    def tensor_map(fid: int) -> dict[str, int]:
        return {m.string(0) or "": m.scalar(1, "I") for m in t.tables(fid)}

    return SignatureDef(t.string(2) or "", t.scalar(4, "I"), tensor_map(0), tensor_map(1))
