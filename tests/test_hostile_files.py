"""Files that are not what they claim: FIFOs, devices and links where a model file belongs,
checkpoint headers and entries that lie. Crafted here, byte by byte; no TensorFlow needed.
Each case must end in one `SourceError` naming the file, promptly, without reading the FIFO
or the device (a FIFO nobody writes to would block a reader forever)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import crc32c
import numpy as np
import pytest

from tf2torch.errors import SourceError
from tf2torch.sources import open_source
from tf2torch.sources.checkpoint.reader import read_checkpoint
from tf2torch.sources.checkpoint.table import masked_crc

_TABLE_MAGIC = 0xDB4775248B80FB57


pytestmark = pytest.mark.usefixtures("no_hang")  # conftest.py: a FIFO fails, not hangs


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, bytes):
        return _varint(number << 3 | 2) + _varint(len(value)) + value
    return _varint(number << 3) + _varint(value)


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A LevelDB block restarting at every entry, with its trailer (no compression, crc)."""
    body, restarts = bytearray(), []
    for key, value in entries:
        restarts.append(len(body))
        body += _varint(0) + _varint(len(key)) + _varint(len(value)) + key + value
    body += b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))
    body += b"\x00"
    return bytes(body) + struct.pack("<I", masked_crc(crc32c.crc32c(bytes(body))))


def _index(num_shards: int, entries: dict[str, bytes]) -> bytes:
    """A checkpoint index (LevelDB table): the bundle header, then one entry per tensor."""
    rows = [(b"", _field(1, num_shards) + _field(3, _field(1, 1)))]
    rows += sorted((name.encode(), value) for name, value in entries.items())
    data = _block(rows)
    index = _block([(b"\xff", _varint(0) + _varint(len(data) - 5))])
    handles = _varint(0) + _varint(0) + _varint(len(data)) + _varint(len(index) - 5)
    footer = handles.ljust(40, b"\x00") + struct.pack("<Q", _TABLE_MAGIC)
    return data + index + footer


def _entry(dtype: int, shape: list[int], offset: int, size: int, data: bytes) -> bytes:
    dims = b"".join(_field(2, _field(1, d)) for d in shape)
    return (_field(1, dtype) + _field(2, dims) + _field(3, 0) + _field(4, offset)
            + _field(5, size) + _varint(6 << 3 | 5) + struct.pack("<I", masked_crc(
                crc32c.crc32c(data))))


def _checkpoint(folder: Path, dtype: int = 1, num_shards: int = 1) -> Path:
    """`folder/model.ckpt` holding one float32 [4] tensor `w` (as `dtype` claims it)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = np.arange(4, dtype="<f4").tobytes()
    prefix = folder / "model.ckpt"
    Path(f"{prefix}.index").write_bytes(_index(num_shards, {"w": _entry(dtype, [4], 0, 16, data)}))
    Path(f"{prefix}.data-00000-of-00001").write_bytes(data)
    return prefix


def test_crafted_checkpoint_reads(tmp_path: Path) -> None:
    """The crafting itself is right: an honest checkpoint reads back (so refusals below are
    the reader's doing, not a broken fixture)."""
    model = read_checkpoint(_checkpoint(tmp_path))
    np.testing.assert_array_equal(model.tensors["w"], np.arange(4, dtype=np.float32))


@pytest.mark.parametrize("claimed", [0, 10**6, 2**40])
def test_absurd_shard_count_refused_before_building_paths(tmp_path: Path, claimed: int) -> None:
    prefix = _checkpoint(tmp_path, num_shards=claimed)
    with pytest.raises(SourceError, match=rf"model\.ckpt\.index: header claims {claimed:,} data "
                       r"shards \(a bundle has 1 to 99,999\)"):
        read_checkpoint(prefix)


def test_dtype_disagreeing_with_stored_size_names_the_tensor(tmp_path: Path) -> None:
    prefix = _checkpoint(tmp_path, dtype=2)  # float64 claimed over 16 bytes of float32
    with pytest.raises(SourceError, match=r"model\.ckpt\.index: tensor 'w' of shape \(4,\) "
                       r"claims 16 bytes, expected 32"):
        read_checkpoint(prefix)


def _fifo(path: Path) -> Path:
    path.unlink(missing_ok=True)
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("victim", ["index", "shard", "state"])
def test_fifo_refused_without_opening(tmp_path: Path, victim: str) -> None:
    prefix = _checkpoint(tmp_path / "ckpt")
    target = {"index": Path(f"{prefix}.index"), "shard": Path(f"{prefix}.data-00000-of-00001"),
              "state": prefix.parent / "checkpoint"}[victim]
    _fifo(target)
    with pytest.raises(SourceError, match=rf"{target.name}: .* is a FIFO, not a regular file"):
        open_source(prefix.parent)  # the folder: its `checkpoint` state file is read first


@pytest.mark.parametrize("victim", ["index", "shard"])
def test_link_to_a_device_refused(tmp_path: Path, victim: str) -> None:
    prefix = _checkpoint(tmp_path / "ckpt")
    target = Path(f"{prefix}.index") if victim == "index" else \
        Path(f"{prefix}.data-00000-of-00001")
    target.unlink()
    target.symlink_to("/dev/zero")
    with pytest.raises(SourceError, match=r"is a link to /dev/zero, outside .*; refused"):
        read_checkpoint(prefix)


def test_link_out_of_the_folder_refused_but_inside_allowed(tmp_path: Path) -> None:
    elsewhere = _checkpoint(tmp_path / "elsewhere")
    prefix = _checkpoint(tmp_path / "ckpt")
    shard = Path(f"{prefix}.data-00000-of-00001")
    shard.unlink()
    shard.symlink_to(Path(f"{elsewhere}.data-00000-of-00001"))
    with pytest.raises(SourceError, match=r"data shard is a link to .*elsewhere.*, outside"):
        read_checkpoint(prefix)
    kept = prefix.parent / "kept" / "shard.bin"
    kept.parent.mkdir()
    kept.write_bytes(Path(f"{elsewhere}.data-00000-of-00001").read_bytes())
    shard.unlink()
    shard.symlink_to(kept)  # a link within the checkpoint's folder is the user's own layout
    np.testing.assert_array_equal(read_checkpoint(prefix).tensors["w"], np.arange(4))


def test_weights_stored_as_integers_are_not_cast_into_a_float_module() -> None:
    """An index entry whose dtype was edited float32 → int32 (same size, valid CRCs) reads
    as int32; the mapping must refuse it, not cast it into the conv."""
    import torch

    from tf2torch.conversion.zoo.mapping import Rule, map_weights

    module = torch.nn.Conv2d(1, 2, 1)
    rules = (Rule(r"conv/weights", "weight", lambda a: a.reshape(2, 1, 1, 1)),
             Rule(r"conv/biases", "bias"))
    honest = {"conv/weights": np.ones(2, np.float32), "conv/biases": np.zeros(2, np.float32)}
    assert map_weights(honest, module, rules)[1].ok
    edited = {**honest, "conv/weights": np.ones(2, np.int32)}
    report = map_weights(edited, module, rules)[1]
    assert not report.ok
    assert report.shape_mismatches == [
        "conv/weights: stored as int32, weight needs floating-point weights"]
