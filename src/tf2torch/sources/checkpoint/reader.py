"""Read TensorFlow V2 checkpoints (tensor bundles) without TensorFlow.

A checkpoint `<prefix>` is an index `<prefix>.index` plus data shards
`<prefix>.data-NNNNN-of-MMMMM`. The index is a LevelDB-format table (sorted keys, blocks with
prefix-compressed keys, a crc32c per block, a fixed footer) mapping each tensor name to a
`BundleEntryProto` (dtype, shape, shard, offset, size, crc32c); the empty key holds the
`BundleHeaderProto`. The few protobuf messages involved are decoded by hand so no protobuf or
TensorFlow install is needed. The index is parsed once; each tensor is read from its shard only
when asked for, and its crc32c is checked on every read.
"""

from __future__ import annotations

import functools
import math
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import crc32c
import numpy as np

from tf2torch.errors import SourceError
from tf2torch.sources.model import SourceModel, TensorInfo, TensorStore

__all__ = ["find_runnables", "read_checkpoint", "release_meta"]

FORMAT = "tf-checkpoint"

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48  # two BlockHandles padded to 40 bytes + 8-byte magic
_TRAILER_SIZE = 5  # compression type byte + masked crc32c of block and type
_NO_COMPRESSION, _SNAPPY = 0, 1
_CRC_MASK_DELTA = 0xA282EAD8
_MAX_MIN_CONSUMER = 1  # TF's kTensorBundleVersion: bundles needing a newer reader are refused

# TF DataType enum → little-endian numpy dtype, for types stored as raw memcpy bytes.
_NUMPY_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),
    2: np.dtype("<f8"),
    3: np.dtype("<i4"),
    4: np.dtype("u1"),
    5: np.dtype("<i2"),
    6: np.dtype("i1"),
    8: np.dtype("<c8"),
    9: np.dtype("<i8"),
    10: np.dtype("?"),
    17: np.dtype("<u2"),
    18: np.dtype("<c16"),
    19: np.dtype("<f2"),
    22: np.dtype("<u4"),
    23: np.dtype("<u8"),
}
_DT_STRING, _DT_BFLOAT16 = 7, 14
_OTHER_DTYPE_NAMES = {
    7: "string",
    11: "qint8",
    12: "quint8",
    13: "qint32",
    14: "bfloat16",
    15: "qint16",
    16: "quint16",
    20: "resource",
    21: "variant",
}

_SHARD_RE = re.compile(r"\.data-\d{5}-of-\d{5}$")
# Published release names: `<arch>_<multiplier>_<input size>[_quant]`, e.g. mobilenet_v2_1.4_224.
_RELEASE_RE = re.compile(r"[a-z][a-z0-9_]*?_\d+\.\d+_(?P<size>\d{2,4})(?:_quant)?")
_CHECKPOINT_LINE_RE = re.compile(r'^\s*model_checkpoint_path:\s*"((?:[^"\\]|\\.)*)"', re.M)


class _Malformed(ValueError):
    """Bytes that do not decode; turned into a SourceError naming the file by the caller."""


def _mask(crc: int) -> int:
    """TF's crc32c masking, applied to every stored checksum."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _CRC_MASK_DELTA) & 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------
# Protobuf wire format: only what the bundle messages use.


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    if pos < len(buf) and buf[pos] < 0x80:  # the common one-byte case, kept cheap
        return buf[pos], pos + 1
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Malformed("bad varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _int64(value: int) -> int:
    """Varints carry negative int64 values as 64-bit two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """Yield (field number, value): ints for varint/fixed fields, bytes for length-delimited."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if pos + width > len(buf):
                raise _Malformed("truncated fixed field")
            value = int.from_bytes(buf[pos : pos + width], "little")
            pos += width
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise _Malformed("truncated length-delimited field")
            value = bytes(buf[pos : pos + length])
            pos += length
        else:
            raise _Malformed(f"unsupported wire type {wire}")
        yield number, value


@dataclass(frozen=True)
class _Header:
    num_shards: int = 1
    big_endian: bool = False
    min_consumer: int = 0


@dataclass(frozen=True)
class _Entry:
    name: str
    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc: int
    sliced: bool

    @property
    def count(self) -> int:
        return math.prod(self.shape)


def _parse_header(value: bytes) -> _Header:
    fields = dict(_fields(value))
    version = dict(_fields(fields[3])) if isinstance(fields.get(3), bytes) else {}
    return _Header(
        num_shards=int(fields.get(1, 0)),
        big_endian=fields.get(2, 0) == 1,
        min_consumer=int(version.get(2, 0)),
    )


def _parse_shape(value: bytes) -> tuple[int, ...]:
    dims = []
    for number, field in _fields(value):
        if number == 2 and isinstance(field, bytes):
            dims.append(_int64(int(dict(_fields(field)).get(1, 0))))
        elif number == 3 and field:
            raise _Malformed("shape of unknown rank")
    if any(d < 0 for d in dims):
        raise _Malformed(f"shape {dims} has unknown dimensions")
    return tuple(dims)


def _parse_entry(name: str, value: bytes) -> _Entry:
    dtype = shard = offset = size = crc = 0
    shape: tuple[int, ...] = ()
    sliced = False
    for number, field in _fields(value):
        if number == 1:
            dtype = int(field)
        elif number == 2 and isinstance(field, bytes):
            shape = _parse_shape(field)
        elif number == 3:
            shard = int(field)
        elif number == 4:
            offset = _int64(int(field))
        elif number == 5:
            size = _int64(int(field))
        elif number == 6:
            crc = int(field)
        elif number == 7:
            sliced = True
    return _Entry(name, dtype, shape, shard, offset, size, crc, sliced)


# ---------------------------------------------------------------------------------------------
# LevelDB table (the `.index` file).


def _block_handle(buf: bytes, pos: int = 0) -> tuple[int, int, int]:
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return offset, size, pos


def _block(data: bytes, offset: int, size: int) -> memoryview:
    """The contents of one block, after checking its bounds, compression and checksum."""
    end = offset + size
    if end + _TRAILER_SIZE > len(data) - _FOOTER_SIZE:
        raise _Malformed(f"block at byte {offset} runs past the end (truncated index?)")
    compression = data[end]
    stored = int.from_bytes(data[end + 1 : end + _TRAILER_SIZE], "little")
    if _mask(crc32c.crc32c(data[offset : end + 1])) != stored:
        raise _Malformed(f"block at byte {offset} fails its crc32c check (corrupt index)")
    if compression == _SNAPPY:
        raise _Malformed("snappy-compressed blocks are not supported (TF writes uncompressed)")
    if compression != _NO_COMPRESSION:
        raise _Malformed(f"unknown block compression type {compression}")
    return memoryview(data)[offset:end]


def _block_entries(block: memoryview) -> Iterator[tuple[bytes, memoryview]]:
    """Yield (key, value) pairs of a block, undoing the shared-prefix key compression."""
    if len(block) < 4:
        raise _Malformed("block too small")
    num_restarts = int.from_bytes(block[-4:], "little")
    limit = len(block) - 4 - 4 * num_restarts
    if num_restarts < 1 or limit < 0:
        raise _Malformed("bad restart array")
    restarts = set(struct.unpack_from(f"<{num_restarts}I", block, limit))
    key = b""
    pos = 0
    while pos < limit:
        start = pos
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        # A restart point stores its key whole; anything else means the offsets are off.
        bad_restart = start in restarts and shared
        if bad_restart or shared > len(key) or pos + unshared + value_len > limit:
            raise _Malformed(f"bad entry at byte {start} of a block")
        key = key[:shared] + bytes(block[pos : pos + unshared])
        pos += unshared
        yield key, block[pos : pos + value_len]
        pos += value_len


def _table_entries(data: bytes) -> Iterator[tuple[bytes, memoryview]]:
    """Yield every (key, value) of a LevelDB table held in `data`."""
    if len(data) < _FOOTER_SIZE:
        raise _Malformed(f"file is {len(data)} bytes, shorter than the table footer")
    footer = data[-_FOOTER_SIZE:]
    if int.from_bytes(footer[-8:], "little") != _TABLE_MAGIC:
        raise _Malformed("bad magic number (not a checkpoint index, or truncated)")
    _, _, pos = _block_handle(footer)  # metaindex: TF writes none we need
    index_offset, index_size, _ = _block_handle(footer, pos)
    for _, handle in _block_entries(_block(data, index_offset, index_size)):
        offset, size, _ = _block_handle(bytes(handle))
        yield from _block_entries(_block(data, offset, size))


def _read_index(index: Path) -> tuple[_Header, list[_Entry]]:
    try:
        data = index.read_bytes()
    except FileNotFoundError:
        raise SourceError(f"{index}: checkpoint index not found") from None
    except OSError as exc:
        raise SourceError(f"{index}: cannot read checkpoint index ({exc.strerror})") from None
    header: _Header | None = None
    entries: list[_Entry] = []
    try:
        for key, value in _table_entries(data):
            if key == b"":
                header = _parse_header(bytes(value))
            elif key[0] != 0:  # keys starting with NUL hold the slices of partitioned tensors
                entries.append(_parse_entry(key.decode("utf-8", "replace"), bytes(value)))
    except _Malformed as exc:
        raise SourceError(f"{index}: {exc}") from None
    except (ValueError, TypeError) as exc:  # a field of the wrong wire type
        raise SourceError(f"{index}: corrupt index entry ({exc})") from None
    if header is None:
        raise SourceError(f"{index}: no bundle header (not a V2 checkpoint index)")
    return header, entries


# ---------------------------------------------------------------------------------------------
# Tensor data.


def _shard_path(prefix: Path, shard: int, num_shards: int) -> Path:
    return prefix.with_name(f"{prefix.name}.data-{shard:05d}-of-{num_shards:05d}")


def _dtype_name(dtype: int) -> str:
    if dtype in _NUMPY_DTYPES:
        return str(_NUMPY_DTYPES[dtype].newbyteorder("="))
    return _OTHER_DTYPE_NAMES.get(dtype, f"DataType enum {dtype}")


def _result_dtype(entry: _Entry) -> np.dtype:
    """The dtype the loader returns: native order; bfloat16 widened to float32."""
    if entry.dtype in _NUMPY_DTYPES:
        return _NUMPY_DTYPES[entry.dtype].newbyteorder("=")
    if entry.dtype == _DT_BFLOAT16:
        return np.dtype(np.float32)
    return np.dtype(object)  # strings as bytes; unsupported types raise when read


def _stored_size(entry: _Entry) -> int | None:
    """Bytes a fixed-width tensor must occupy, or None for variable-width (string) data."""
    if entry.dtype in _NUMPY_DTYPES:
        return entry.count * _NUMPY_DTYPES[entry.dtype].itemsize
    if entry.dtype == _DT_BFLOAT16:
        return entry.count * 2
    return None


def _string_lengths(raw: bytearray, count: int) -> tuple[list[int], int]:
    """String layout: varint64 lengths, a 4-byte masked crc of them, then the bytes."""
    lengths, pos = [], 0
    for _ in range(count):
        length, pos = _varint(raw, pos)
        lengths.append(length)
    return lengths, pos


def _content_crc(entry: _Entry, raw: bytearray) -> int:
    """The crc32c TF computed while writing the tensor (before masking)."""
    if entry.dtype != _DT_STRING:
        return crc32c.crc32c(raw)
    # TF checksums each string length as a 4-byte integer, not as the varint it stores.
    lengths, pos = _string_lengths(raw, entry.count)
    crc = crc32c.crc32c(np.array(lengths, dtype=np.uint64).astype("<u4").tobytes())
    return crc32c.crc32c(raw[pos:], crc)


def _decode_strings(entry: _Entry, raw: bytearray) -> np.ndarray:
    lengths, pos = _string_lengths(raw, entry.count)
    pos += 4  # the lengths' own checksum, already covered by the entry's crc
    if pos + sum(lengths) > len(raw):
        raise _Malformed("string data shorter than its lengths")
    out = np.empty(entry.count, dtype=object)
    for i, length in enumerate(lengths):
        out[i] = bytes(raw[pos : pos + length])
        pos += length
    return out.reshape(entry.shape)


def _decode(entry: _Entry, raw: bytearray) -> np.ndarray:
    if entry.dtype in _NUMPY_DTYPES:
        array = np.frombuffer(raw, dtype=_NUMPY_DTYPES[entry.dtype])
        return array.astype(_result_dtype(entry), copy=False).reshape(entry.shape)
    if entry.dtype == _DT_BFLOAT16:
        # bfloat16 is the top half of a float32: widen by shifting, no ml_dtypes needed.
        halves = np.frombuffer(raw, dtype="<u2").astype(np.uint32)
        return (halves << 16).view(np.float32).reshape(entry.shape)
    return _decode_strings(entry, raw)


def _load(entry: _Entry, shard: Path) -> np.ndarray:
    """Read one tensor from its shard, verifying its crc32c."""
    if entry.dtype not in _NUMPY_DTYPES and entry.dtype not in (_DT_STRING, _DT_BFLOAT16):
        raise SourceError(
            f"{shard}: tensor {entry.name!r} has unsupported dtype {_dtype_name(entry.dtype)}"
        )
    raw = bytearray(entry.size)  # writable buffer, so the returned array is writable too
    try:
        with open(shard, "rb") as file:
            file.seek(entry.offset)
            got = file.readinto(raw)
    except FileNotFoundError:
        raise SourceError(f"{shard}: data shard not found (needed for {entry.name!r})") from None
    if got != entry.size:
        raise SourceError(
            f"{shard}: truncated; tensor {entry.name!r} needs bytes "
            f"{entry.offset}..{entry.offset + entry.size} but the file ends sooner"
        )
    try:
        if _mask(_content_crc(entry, raw)) != entry.crc:
            raise SourceError(
                f"{shard}: tensor {entry.name!r} fails its crc32c check (corrupt data)"
            )
        return _decode(entry, raw)
    except _Malformed as exc:
        raise SourceError(f"{shard}: tensor {entry.name!r}: {exc}") from None


def _refuse_sliced(entry: _Entry, prefix: Path) -> np.ndarray:
    raise SourceError(
        f"{prefix}: tensor {entry.name!r} is partitioned into slices, which tf2torch does not read"
    )


def _loader(entry: _Entry, shards: list[Path], prefix: Path) -> Callable[[], np.ndarray]:
    if entry.sliced:  # the whole-tensor entry of a partitioned variable names no data
        return functools.partial(_refuse_sliced, entry, prefix)
    return functools.partial(_load, entry, shards[entry.shard])


def _check_entries(entries: list[_Entry], shards: list[Path], index: Path) -> None:
    """Fail at open time on anything a later read would trip over, naming tensor and file."""
    shard_sizes = []
    for path in shards:
        try:
            shard_sizes.append(path.stat().st_size)
        except FileNotFoundError:
            raise SourceError(f"{path}: data shard not found") from None
    for entry in entries:
        if entry.sliced:
            continue
        if not 0 <= entry.shard < len(shards):
            raise SourceError(
                f"{index}: tensor {entry.name!r} names shard {entry.shard} of {len(shards)}"
            )
        path = shards[entry.shard]
        expected = _stored_size(entry)
        if expected is not None and entry.size != expected:
            raise SourceError(
                f"{index}: tensor {entry.name!r} of shape {entry.shape} claims "
                f"{entry.size} bytes, expected {expected}"
            )
        if entry.offset < 0 or entry.offset + entry.size > shard_sizes[entry.shard]:
            raise SourceError(
                f"{path}: truncated; tensor {entry.name!r} needs bytes "
                f"{entry.offset}..{entry.offset + entry.size} of {shard_sizes[entry.shard]}"
            )


# ---------------------------------------------------------------------------------------------
# Locating the checkpoint and what lies beside it.


def _prefix_from_checkpoint_file(folder: Path) -> Path | None:
    """The `model_checkpoint_path` of a folder's `checkpoint` state file, if any."""
    state = folder / "checkpoint"
    if not state.is_file():
        return None
    match = _CHECKPOINT_LINE_RE.search(state.read_text(errors="replace"))
    if not match:
        raise SourceError(f"{state}: no model_checkpoint_path line")
    prefix = folder / match.group(1).replace('\\"', '"').replace("\\\\", "\\")
    # Folders are often moved after training; TF then falls back to the name beside the file.
    if not _index_path(prefix).exists() and _index_path(folder / prefix.name).exists():
        prefix = folder / prefix.name
    return prefix


def _index_path(prefix: Path) -> Path:
    return prefix.with_name(prefix.name + ".index")


def _prefix_in_folder(folder: Path) -> Path:
    from_state = _prefix_from_checkpoint_file(folder)
    if from_state is not None:
        return from_state
    indexes = sorted(folder.glob("*.index"))
    if len(indexes) != 1:
        found = ", ".join(p.name for p in indexes) or "none"
        raise SourceError(
            f"{folder}: expected a 'checkpoint' file or exactly one *.index, found {found}"
        )
    return indexes[0].with_suffix("")


def _resolve_prefix(path: Path) -> Path:
    """Accept a prefix, its `.index`, one of its data shards, or a folder holding one."""
    if path.is_dir():
        return _prefix_in_folder(path)
    if path.name.endswith(".index"):
        return path.with_suffix("")
    if _SHARD_RE.search(path.name):
        return path.with_name(_SHARD_RE.sub("", path.name))
    if path.name.endswith(".meta") and not _index_path(path).exists():
        return path.with_suffix("")
    return path


def release_meta(name: str) -> dict[str, object]:
    """`release` and `input_size` when `name` looks like a published release name."""
    match = _RELEASE_RE.fullmatch(name)
    if not match:
        return {}
    return {"release": name, "input_size": int(match.group("size"))}


def _stem(prefix: Path) -> str:
    """`mobilenet_v2_1.4_224` of `mobilenet_v2_1.4_224.ckpt` (or `.ckpt-1000`)."""
    return re.sub(r"\.ckpt(-\d+)?$", "", prefix.name)


def _release_from(prefix: Path) -> dict[str, object]:
    return release_meta(_stem(prefix)) or release_meta(prefix.parent.name)


def _pick(candidates: list[Path], stem: str) -> Path | None:
    """The candidate named after the checkpoint if any, else the first by name."""
    if not candidates:
        return None
    ranked = sorted(candidates, key=lambda p: (not p.name.startswith(stem), len(p.name), p))
    return ranked[0]


def find_runnables(folder: Path, stem: str, recursive: bool = False) -> dict[str, Path]:
    """Reference files beside a checkpoint: `tflite`, `frozen_pb`, `tests_h5`, `keras` paths."""
    glob = folder.rglob if recursive else folder.glob
    patterns = {
        "tflite": ["*.tflite"],
        "frozen_pb": ["*_frozen.pb", "frozen_graph.pb"],
        "tests_h5": ["tests.h5"],
        "keras": ["*.keras"],
    }
    found: dict[str, Path] = {}
    for kind, globs in patterns.items():
        candidates = [p for pattern in globs for p in glob(pattern) if p.is_file()]
        chosen = _pick(candidates, stem)
        if chosen is not None:
            found[kind] = chosen
    return found


def read_checkpoint(path: str | Path) -> SourceModel:
    """Open a TF V2 checkpoint; tensors are read (and crc-checked) lazily, one per access.

    `path` may be the prefix (`dir/model.ckpt`), its `.index`, a data shard, or a folder with
    a `checkpoint` state file or exactly one `*.index`.
    """
    prefix = _resolve_prefix(Path(path))
    index = _index_path(prefix)
    header, entries = _read_index(index)
    if header.big_endian:
        raise SourceError(f"{index}: big-endian checkpoints are not supported")
    if header.min_consumer > _MAX_MIN_CONSUMER:
        raise SourceError(
            f"{index}: bundle format needs a reader of version {header.min_consumer}"
        )
    shards = [_shard_path(prefix, i, header.num_shards) for i in range(header.num_shards)]
    _check_entries(entries, shards, index)
    store = TensorStore()
    for entry in entries:
        info = TensorInfo(entry.name, entry.shape, _result_dtype(entry))
        store.add(info, _loader(entry, shards, prefix))
    meta: dict[str, object] = {"num_shards": header.num_shards, **_release_from(prefix)}
    return SourceModel(
        format=FORMAT,
        path=prefix,
        tensors=store,
        meta=meta,
        runnable=find_runnables(prefix.parent, _stem(prefix)),
    )
