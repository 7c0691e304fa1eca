"""Tensor data of a bundle: each tensor read from its shard only when asked for, its crc32c
checked on every read, and every entry checked against the shards' sizes at open time.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import crc32c
import numpy as np

from tf2torch.errors import SourceError
from tf2torch.sources.checkpoint.table import (
    MAX_MIN_CONSUMER,
    Entry,
    Malformed,
    masked_crc,
    read_index,
    varint,
)
from tf2torch.sources.model import TensorInfo, TensorStore
from tf2torch.util.budgets import MAX_CHECKPOINT_SHARDS
from tf2torch.util.files import check_regular, open_regular

_OPEN_SHARDS = 8  # data shards kept open at once (`_ShardFiles`)

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


def _shard_path(prefix: Path, shard: int, num_shards: int) -> Path:
    return prefix.with_name(f"{prefix.name}.data-{shard:05d}-of-{num_shards:05d}")


def _dtype_name(dtype: int) -> str:
    if dtype in _NUMPY_DTYPES:
        return str(_NUMPY_DTYPES[dtype].newbyteorder("="))
    return _OTHER_DTYPE_NAMES.get(dtype, f"DataType enum {dtype}")


def _result_dtype(entry: Entry) -> np.dtype:
    """The dtype the loader returns: native order; bfloat16 widened to float32."""
    if entry.dtype in _NUMPY_DTYPES:
        return _NUMPY_DTYPES[entry.dtype].newbyteorder("=")
    if entry.dtype == _DT_BFLOAT16:
        return np.dtype(np.float32)
    return np.dtype(object)  # strings as bytes; unsupported types raise when read


def _stored_size(entry: Entry) -> int | None:
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
        length, pos = varint(raw, pos)
        lengths.append(length)
    return lengths, pos


def _content_crc(entry: Entry, raw: bytearray) -> int:
    """The crc32c TF computed while writing the tensor (before masking)."""
    if entry.dtype != _DT_STRING:
        return crc32c.crc32c(raw)
    # TF checksums each string length as a 4-byte integer, not as the varint it stores.
    lengths, pos = _string_lengths(raw, entry.count)
    crc = crc32c.crc32c(np.array(lengths, dtype=np.uint64).astype("<u4").tobytes())
    return crc32c.crc32c(raw[pos:], crc)


def _decode_strings(entry: Entry, raw: bytearray) -> np.ndarray:
    lengths, pos = _string_lengths(raw, entry.count)
    pos += 4  # the lengths' own checksum, already covered by the entry's crc
    if pos + sum(lengths) > len(raw):
        raise Malformed("string data shorter than its lengths")
    out = np.empty(entry.count, dtype=object)
    for i, length in enumerate(lengths):
        out[i] = bytes(raw[pos : pos + length])
        pos += length
    return out.reshape(entry.shape)


def _decode(entry: Entry, raw: bytearray) -> np.ndarray:
    if entry.dtype in _NUMPY_DTYPES:
        array = np.frombuffer(raw, dtype=_NUMPY_DTYPES[entry.dtype])
        return array.astype(_result_dtype(entry), copy=False).reshape(entry.shape)
    if entry.dtype == _DT_BFLOAT16:
        # bfloat16 is the top half of a float32: widen by shifting, no ml_dtypes needed.
        halves = np.frombuffer(raw, dtype="<u2").astype(np.uint32)
        return (halves << 16).view(np.float32).reshape(entry.shape)
    return _decode_strings(entry, raw)


class _ShardFiles:
    """The bundle's data shards, each opened (and checked: a regular file inside `confine`)
    on its first read and then kept open, so the file checked is the file read, and a
    tensor-by-tensor read of 260 tensors walks the path once rather than 260 times. At most
    `_OPEN_SHARDS` stay open (a bundle may have thousands); closed with the store."""

    def __init__(self, paths: list[Path], confine: Path) -> None:
        self.paths, self.confine = paths, confine
        self._open: OrderedDict[int, BinaryIO] = OrderedDict()
        self._lock = threading.Lock()  # a file's seek and read go together

    def read_into(self, shard: int, offset: int, raw: bytearray) -> int:
        with self._lock:
            file = self._open.get(shard)
            if file is None:
                file = open_regular(self.paths[shard], "data shard", SourceError,
                                    within=self.confine)
                self._open[shard] = file
                if len(self._open) > _OPEN_SHARDS:
                    self._open.popitem(last=False)[1].close()
            self._open.move_to_end(shard)
            file.seek(offset)
            return file.readinto(raw)

    def close(self) -> None:
        with self._lock:
            while self._open:
                self._open.popitem()[1].close()


def _load(entry: Entry, files: _ShardFiles) -> np.ndarray:
    """Read one tensor from its shard, verifying its crc32c."""
    path = files.paths[entry.shard]
    if entry.dtype not in _NUMPY_DTYPES and entry.dtype not in (_DT_STRING, _DT_BFLOAT16):
        raise SourceError(
            f"{path}: tensor {entry.name!r} has unsupported dtype "
            f"{_dtype_name(entry.dtype)}"
        )
    raw = bytearray(entry.size)  # writable buffer, so the returned array is writable too
    try:
        got = files.read_into(entry.shard, entry.offset, raw)
    except FileNotFoundError:
        raise SourceError(f"{path}: data shard not found (needed for {entry.name!r})") from None
    if got != entry.size:
        raise SourceError(
            f"{path}: truncated; tensor {entry.name!r} needs bytes "
            f"{entry.offset}..{entry.offset + entry.size} but the file ends sooner"
        )
    try:
        if masked_crc(_content_crc(entry, raw)) != entry.crc:
            raise SourceError(
                f"{path}: tensor {entry.name!r} fails its crc32c check (corrupt data)"
            )
        return _decode(entry, raw)
    except Malformed as exc:
        raise SourceError(f"{path}: tensor {entry.name!r}: {exc}") from None


def _refuse_sliced(entry: Entry, prefix: Path) -> np.ndarray:
    raise SourceError(
        f"{prefix}: tensor {entry.name!r} is partitioned into slices, which tf2torch does not read"
    )


def _loader(entry: Entry, files: _ShardFiles, prefix: Path) -> Callable[[], np.ndarray]:
    if entry.sliced:  # the whole-tensor entry of a partitioned variable names no data
        return functools.partial(_refuse_sliced, entry, prefix)
    return functools.partial(_load, entry, files)


def _check_entries(entries: list[Entry], shards: list[Path], index: Path,
                   confine: Path) -> None:
    """Fail at open time on anything a later read would trip over, naming tensor and file."""
    shard_sizes = []
    for path in shards:
        try:
            shard_sizes.append(check_regular(path, "data shard", SourceError,
                                             within=confine).st_size)
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


def read_bundle(prefix: Path, confine: Path | None = None) -> tuple[TensorStore, int]:
    """The tensors of the bundle at `prefix` (lazily read) and its shard count. Index and
    shards must be regular files within `confine` (default: the prefix's folder; links may
    point inside it)."""
    confine = confine or prefix.parent
    index = prefix.with_name(prefix.name + ".index")
    header, entries = read_index(index, confine)
    if header.big_endian:
        raise SourceError(f"{index}: big-endian checkpoints are not supported")
    if header.min_consumer > MAX_MIN_CONSUMER:
        raise SourceError(
            f"{index}: bundle format needs a reader of version {header.min_consumer}"
        )
    if not 0 < header.num_shards <= MAX_CHECKPOINT_SHARDS:  # before building a path per shard
        raise SourceError(f"{index}: header claims {header.num_shards:,} data shards "
                          f"(a bundle has 1 to {MAX_CHECKPOINT_SHARDS:,}); corrupt index")
    shards = [_shard_path(prefix, i, header.num_shards) for i in range(header.num_shards)]
    _check_entries(entries, shards, index, confine)
    files = _ShardFiles(shards, confine)
    store = TensorStore(close=files.close)
    for entry in entries:
        info = TensorInfo(entry.name, entry.shape, _result_dtype(entry))
        store.add(info, _loader(entry, files, prefix))
    return store, header.num_shards
