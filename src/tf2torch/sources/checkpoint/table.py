"""The index of a tensor bundle: a LevelDB-format table of protobuf messages, decoded by hand.

A bundle's `<prefix>.index` maps each tensor name to a `BundleEntryProto` (dtype, shape, shard,
offset, size, crc32c); the empty key holds the `BundleHeaderProto`. The table has sorted keys,
blocks with prefix-compressed keys, a crc32c per block and a fixed footer. The few protobuf
messages involved are decoded here so no protobuf or TensorFlow install is needed.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import crc32c

from tf2torch.errors import SourceError
from tf2torch.util.files import read_regular

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48  # two BlockHandles padded to 40 bytes + 8-byte magic
_TRAILER_SIZE = 5  # compression type byte + masked crc32c of block and type
_NO_COMPRESSION, _SNAPPY = 0, 1
_CRC_MASK_DELTA = 0xA282EAD8
MAX_MIN_CONSUMER = 1  # TF's kTensorBundleVersion: bundles needing a newer reader are refused


class Malformed(ValueError):
    """Bytes that do not decode; turned into a SourceError naming the file by the caller."""


def masked_crc(crc: int) -> int:
    """TF's crc32c masking, applied to every stored checksum."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _CRC_MASK_DELTA) & 0xFFFFFFFF


# Protobuf wire format: only what the bundle messages use.


def varint(buf: bytes, pos: int) -> tuple[int, int]:
    if pos < len(buf) and buf[pos] < 0x80:  # the common one-byte case, kept cheap
        return buf[pos], pos + 1
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise Malformed("bad varint")
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
        key, pos = varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if pos + width > len(buf):
                raise Malformed("truncated fixed field")
            value = int.from_bytes(buf[pos : pos + width], "little")
            pos += width
        elif wire == 2:
            length, pos = varint(buf, pos)
            if pos + length > len(buf):
                raise Malformed("truncated length-delimited field")
            value = bytes(buf[pos : pos + length])
            pos += length
        else:
            raise Malformed(f"unsupported wire type {wire}")
        yield number, value


@dataclass(frozen=True)
class _Header:
    num_shards: int = 1
    big_endian: bool = False
    min_consumer: int = 0


@dataclass(frozen=True)
class Entry:
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
            raise Malformed("shape of unknown rank")
    if any(d < 0 for d in dims):
        raise Malformed(f"shape {dims} has unknown dimensions")
    return tuple(dims)


def _parse_entry(name: str, value: bytes) -> Entry:
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
    return Entry(name, dtype, shape, shard, offset, size, crc, sliced)


# LevelDB table (the `.index` file).


def _block_handle(buf: bytes, pos: int = 0) -> tuple[int, int, int]:
    offset, pos = varint(buf, pos)
    size, pos = varint(buf, pos)
    return offset, size, pos


def _block(data: bytes, offset: int, size: int) -> memoryview:
    """The contents of one block, after checking its bounds, compression and checksum."""
    end = offset + size
    if end + _TRAILER_SIZE > len(data) - _FOOTER_SIZE:
        raise Malformed(f"block at byte {offset} runs past the end (truncated index?)")
    compression = data[end]
    stored = int.from_bytes(data[end + 1 : end + _TRAILER_SIZE], "little")
    if masked_crc(crc32c.crc32c(data[offset : end + 1])) != stored:
        raise Malformed(f"block at byte {offset} fails its crc32c check (corrupt index)")
    if compression == _SNAPPY:
        raise Malformed("snappy-compressed blocks are not supported (TF writes uncompressed)")
    if compression != _NO_COMPRESSION:
        raise Malformed(f"unknown block compression type {compression}")
    return memoryview(data)[offset:end]


def _block_entries(block: memoryview) -> Iterator[tuple[bytes, memoryview]]:
    """Yield (key, value) pairs of a block, undoing the shared-prefix key compression."""
    if len(block) < 4:
        raise Malformed("block too small")
    num_restarts = int.from_bytes(block[-4:], "little")
    limit = len(block) - 4 - 4 * num_restarts
    if num_restarts < 1 or limit < 0:
        raise Malformed("bad restart array")
    restarts = set(struct.unpack_from(f"<{num_restarts}I", block, limit))
    key = b""
    pos = 0
    while pos < limit:
        start = pos
        shared, pos = varint(block, pos)
        unshared, pos = varint(block, pos)
        value_len, pos = varint(block, pos)
        # A restart point stores its key whole; anything else means the offsets are off.
        bad_restart = start in restarts and shared
        if bad_restart or shared > len(key) or pos + unshared + value_len > limit:
            raise Malformed(f"bad entry at byte {start} of a block")
        key = key[:shared] + bytes(block[pos : pos + unshared])
        pos += unshared
        yield key, block[pos : pos + value_len]
        pos += value_len


def _table_entries(data: bytes) -> Iterator[tuple[bytes, memoryview]]:
    """Yield every (key, value) of a LevelDB table held in `data`."""
    if len(data) < _FOOTER_SIZE:
        raise Malformed(f"file is {len(data)} bytes, shorter than the table footer")
    footer = data[-_FOOTER_SIZE:]
    if int.from_bytes(footer[-8:], "little") != _TABLE_MAGIC:
        raise Malformed("bad magic number (not a checkpoint index, or truncated)")
    _, _, pos = _block_handle(footer)  # metaindex: TF writes none we need
    index_offset, index_size, _ = _block_handle(footer, pos)
    for _, handle in _block_entries(_block(data, index_offset, index_size)):
        offset, size, _ = _block_handle(bytes(handle))
        yield from _block_entries(_block(data, offset, size))


def read_index(index: Path, confine: Path) -> tuple[_Header, list[Entry]]:
    """Header and entries of a checkpoint index, a regular file within `confine`."""
    try:
        data = read_regular(index, "checkpoint index", SourceError, within=confine)
    except FileNotFoundError:
        raise SourceError(f"{index}: checkpoint index not found") from None
    except OSError as exc:
        raise SourceError(f"{index}: cannot read checkpoint index ({exc.strerror})") from None
    header: _Header | None = None
    entries: list[Entry] = []
    try:
        for key, value in _table_entries(data):
            if key == b"":
                header = _parse_header(bytes(value))
            elif key[0] != 0:  # keys starting with NUL hold the slices of partitioned tensors
                entries.append(_parse_entry(key.decode("utf-8", "replace"), bytes(value)))
    except Malformed as exc:
        raise SourceError(f"{index}: {exc}") from None
    except (ValueError, TypeError) as exc:  # a field of the wrong wire type
        raise SourceError(f"{index}: corrupt index entry ({exc})") from None
    if header is None:
        raise SourceError(f"{index}: no bundle header (not a V2 checkpoint index)")
    return header, entries
