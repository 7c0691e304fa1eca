"""The TF V2 checkpoint reader against checkpoints written by TensorFlow itself."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import crc32c
import numpy as np
import pytest
import torch  # noqa: F401  (imported before TensorFlow: their shared libraries clash otherwise)

from tf2torch.errors import SourceError
from tf2torch.sources import open_source
from tf2torch.sources.checkpoint.reader import read_checkpoint

tf = pytest.importorskip("tensorflow")

RNG_SEED = 20240611
SHARD = ".data-00000-of-00001"


def _save(prefix: Path, tensors: dict[str, object], slices: dict[str, str] | None = None) -> Path:
    """Write a checkpoint with TF's own SaveV2 kernel."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    names = list(tensors)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[(slices or {}).get(n, "") for n in names],
        tensors=[tf.convert_to_tensor(tensors[n]) for n in names],
    )
    return prefix


def _assert_matches_tf(model, prefix: Path) -> None:
    """Every tensor equals what TF's own reader returns, in value, shape and dtype."""
    reader = tf.train.load_checkpoint(str(prefix))
    assert set(model.tensors) == set(reader.get_variable_to_shape_map())
    for name in model.tensors:
        ours, theirs = model.tensors[name], np.asarray(reader.get_tensor(name))
        assert ours.shape == theirs.shape == model.tensors.info(name).shape, name
        assert ours.dtype == model.tensors.info(name).dtype, name
        if theirs.dtype.name == "bfloat16":
            assert ours.dtype == np.float32, name
            theirs = theirs.astype(np.float32)
        elif theirs.dtype.kind in "SUO":
            assert ours.dtype == object, name
            theirs = theirs.astype(object)
        else:
            assert ours.dtype == theirs.dtype, name
        np.testing.assert_array_equal(ours, theirs, err_msg=name)


def _mixed_tensors() -> dict[str, object]:
    rng = np.random.default_rng(RNG_SEED)
    normal = rng.standard_normal
    return {
        "conv/weights": normal((3, 3, 8, 16)).astype(np.float32),
        "conv/bias": normal(16).astype(np.float32),
        "half": normal((5, 7)).astype(np.float16),
        "bf16": tf.constant(normal((4, 9)).astype(np.float32), dtype=tf.bfloat16),
        "double": normal(11),
        "i8": rng.integers(-128, 128, 13, dtype=np.int8),
        "i16": rng.integers(-(2**15), 2**15, 13, dtype=np.int16),
        "i32": rng.integers(-(2**31), 2**31, (2, 3), dtype=np.int32),
        "i64": rng.integers(-(2**62), 2**62, 7, dtype=np.int64),
        "u8": rng.integers(0, 256, 17, dtype=np.uint8),
        "mask": rng.random(10) > 0.5,
        "global_step": np.int64(123456789012),
        "scalar_f": np.float32(0.5),
        "empty": np.zeros((0, 3), np.float32),
        "labels": np.array([b"background", b"tench", b""], dtype=object),
        "big": normal((256, 1024)).astype(np.float32),
    }


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    return _save(tmp_path_factory.mktemp("mixed") / "model.ckpt", _mixed_tensors())


@pytest.fixture
def mixed_copy(mixed: Path, tmp_path: Path) -> Path:
    """A private copy of the mixed checkpoint, for tests that damage it."""
    shutil.copytree(mixed.parent, tmp_path / "ckpt")
    return tmp_path / "ckpt" / mixed.name


def test_every_dtype_matches_tensorflow(mixed: Path) -> None:
    model = read_checkpoint(mixed)
    assert model.format == "tf-checkpoint"
    assert model.path == mixed
    assert model.meta["num_shards"] == 1
    assert model.tensors.info("bf16").dtype == np.float32
    assert model.tensors["global_step"].shape == ()
    _assert_matches_tf(model, mixed)


def test_arrays_are_fresh_and_writable(mixed: Path) -> None:
    tensors = read_checkpoint(mixed).tensors
    first = tensors["conv/bias"]
    first[:] = 0  # the store caches nothing, so the next read is unaffected
    assert tensors["conv/bias"].any()


def test_accepts_prefix_index_shard_and_folder(mixed: Path) -> None:
    forms = [mixed, str(mixed), Path(f"{mixed}.index"), Path(f"{mixed}{SHARD}"), mixed.parent]
    for form in forms:
        model = read_checkpoint(form)
        assert model.path == mixed, form
        assert len(model.tensors) == len(_mixed_tensors())
    assert open_source(mixed).path == mixed


def test_many_tensors_span_several_index_blocks(tmp_path: Path) -> None:
    rng = np.random.default_rng(RNG_SEED)
    # Long names sharing prefixes: several 256 KiB index blocks and many restart points.
    shapes = [(i % 5 + 1, 3) for i in range(320)]
    tensors = {
        f"scope_{i // 25}/layer_{i:03d}/{'w' * 900}/kernel": rng.standard_normal(shape)
        for i, shape in enumerate(shapes)
    }
    prefix = _save(tmp_path / "many", tensors)
    assert _index_data_blocks(Path(f"{prefix}.index")) > 1
    model = read_checkpoint(prefix)
    assert len(model.tensors) == len(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(model.tensors[name], value)


def test_multi_shard_checkpoint(tmp_path: Path) -> None:
    rng = np.random.default_rng(RNG_SEED)
    parts = []
    for shard in range(3):
        tensors = {f"s{shard}/t{j}": rng.standard_normal((shard + 2, j + 1)) for j in range(4)}
        parts.append(str(_save(tmp_path / f"part{shard}", tensors)))
    merged = tmp_path / "merged" / "model.ckpt"
    merged.parent.mkdir()
    tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=parts, destination_prefix=str(merged))
    shards = sorted(p.name for p in merged.parent.glob("*.data-*"))
    assert shards == [f"model.ckpt.data-0000{i}-of-00003" for i in range(3)]
    model = read_checkpoint(merged)
    assert model.meta["num_shards"] == 3
    _assert_matches_tf(model, merged)


def test_tf2_object_checkpoint_folder(tmp_path: Path) -> None:
    """`tf.train.Checkpoint.save` writes a `checkpoint` state file and a string tensor."""
    ckpt = tf.train.Checkpoint(
        dense=tf.Variable(np.arange(12, dtype=np.float32).reshape(3, 4)),
        step=tf.Variable(7, dtype=tf.int64),
    )
    saved = Path(ckpt.save(str(tmp_path / "run" / "ckpt")))
    model = read_checkpoint(tmp_path / "run")
    assert model.path == saved
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" in model.tensors
    _assert_matches_tf(model, saved)


def test_state_file_with_stale_absolute_path(mixed_copy: Path) -> None:
    # Training folders get moved; the recorded absolute path then no longer exists.
    state = 'model_checkpoint_path: "/gone/elsewhere/model.ckpt"\n'
    (mixed_copy.parent / "checkpoint").write_text(state)
    assert read_checkpoint(mixed_copy.parent).path == mixed_copy


def test_folder_with_two_checkpoints_is_ambiguous(mixed: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        _save(tmp_path / name, {"x": np.ones(2, np.float32)})
    with pytest.raises(SourceError, match=r"exactly one \*\.index.*a\.index, b\.index"):
        read_checkpoint(tmp_path)


def test_release_name_and_runnables(tmp_path: Path) -> None:
    folder = tmp_path / "mobilenet_v2_1.4_224"
    prefix = _save(folder / "mobilenet_v2_1.4_224.ckpt", {"w": np.ones(3, np.float32)})
    for name in ("mobilenet_v2_1.4_224.tflite", "mobilenet_v2_1.4_224_frozen.pb", "tests.h5"):
        (folder / name).write_bytes(b"stub")
    model = read_checkpoint(prefix)
    assert model.meta["release"] == "mobilenet_v2_1.4_224"
    assert model.meta["input_size"] == 224
    assert model.runnable == {
        "tflite": folder / "mobilenet_v2_1.4_224.tflite",
        "frozen_pb": folder / "mobilenet_v2_1.4_224_frozen.pb",
        "tests_h5": folder / "tests.h5",
    }


def test_plain_name_has_no_release(mixed: Path) -> None:
    model = read_checkpoint(mixed)
    assert "release" not in model.meta
    assert model.runnable == {}


# --- damaged and unsupported input ------------------------------------------------------------


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        value, pos, shift = value | (byte & 0x7F) << shift, pos + 1, shift + 7
        if byte < 0x80:
            return value, pos


def _masked_crc(data: bytes) -> int:
    crc = crc32c.crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _index_block(index: bytes) -> bytes:
    """The index block of a table (the footer's second handle), without its trailer."""
    footer = index[-48:]
    _, pos = _varint(footer, _varint(footer, 0)[1])  # skip the metaindex handle
    offset, pos = _varint(footer, pos)
    size, _ = _varint(footer, pos)
    return index[offset : offset + size]


def _index_data_blocks(index: Path) -> int:
    # TF's index block restarts at every entry, so its restart count is its entry count.
    return struct.unpack("<I", _index_block(index.read_bytes())[-4:])[0]


def _first_block_size(index: bytes) -> int:
    """Size of the first data block (which starts at byte 0), from the index block."""
    block = _index_block(index)
    # First index entry: shared=0, key length, value length, key, then the block's handle.
    _, pos = _varint(block, 0)
    key_len, pos = _varint(block, pos)
    _, pos = _varint(block, pos)
    _, pos = _varint(block, pos + key_len)  # the handle's offset, 0
    return _varint(block, pos)[0]


def _patch_first_block(index: Path, offset: int, new: bytes) -> None:
    """Overwrite bytes of the first data block (or its trailer) and re-seal its checksum."""
    data = bytearray(index.read_bytes())
    size = _first_block_size(bytes(data))
    data[offset : offset + len(new)] = new
    data[size + 1 : size + 5] = struct.pack("<I", _masked_crc(bytes(data[: size + 1])))
    index.write_bytes(bytes(data))


def test_missing_index(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"nope\.index: checkpoint index not found"):
        read_checkpoint(tmp_path / "nope")


@pytest.mark.parametrize("keep", [0, 10, 60, -1], ids=["empty", "tiny", "head", "less-one"])
def test_truncated_index(mixed_copy: Path, keep: int) -> None:
    index = Path(f"{mixed_copy}.index")
    data = index.read_bytes()
    index.write_bytes(data[:keep])
    with pytest.raises(SourceError, match=rf"{mixed_copy.name}\.index: "):
        read_checkpoint(mixed_copy)


def test_bad_magic(mixed_copy: Path) -> None:
    _flip(Path(f"{mixed_copy}.index"), -1)
    with pytest.raises(SourceError, match="bad magic number"):
        read_checkpoint(mixed_copy)


@pytest.mark.parametrize("offset", [3, 40, 100])
def test_flipped_index_byte_fails_block_crc(mixed_copy: Path, offset: int) -> None:
    _flip(Path(f"{mixed_copy}.index"), offset)
    with pytest.raises(SourceError, match=r"model\.ckpt\.index: block at byte 0 fails its crc32c"):
        read_checkpoint(mixed_copy)


def test_snappy_block_refused(mixed_copy: Path) -> None:
    index = Path(f"{mixed_copy}.index")
    size = _first_block_size(index.read_bytes())
    _patch_first_block(index, size, b"\x01")  # the compression type byte: 1 is snappy
    with pytest.raises(SourceError, match="snappy-compressed blocks are not supported"):
        read_checkpoint(mixed_copy)


def test_big_endian_refused(mixed_copy: Path) -> None:
    index = Path(f"{mixed_copy}.index")
    # First entry: the header under key "" → bytes 0..2 are (shared, key len, value len) and
    # the value starts with field 1 (num_shards); turn its tag into field 2 (endianness).
    assert index.read_bytes()[3:5] == b"\x08\x01"
    _patch_first_block(index, 3, b"\x10")
    with pytest.raises(SourceError, match="big-endian checkpoints are not supported"):
        read_checkpoint(mixed_copy)


def test_truncated_data_file(tmp_path: Path) -> None:
    prefix = _save(tmp_path / "m", {"a": np.ones(4, np.float32), "z_last": np.ones(9)})
    shard = Path(f"{prefix}{SHARD}")
    shard.write_bytes(shard.read_bytes()[:-1])
    with pytest.raises(SourceError, match=rf"m{SHARD}: truncated; tensor 'z_last'"):
        read_checkpoint(prefix)


def test_truncated_after_open_is_caught_on_read(tmp_path: Path) -> None:
    prefix = _save(tmp_path / "m", {"a": np.ones(4, np.float32), "z_last": np.ones(9)})
    model = read_checkpoint(prefix)
    shard = Path(f"{prefix}{SHARD}")
    shard.write_bytes(shard.read_bytes()[:20])
    np.testing.assert_array_equal(model.tensors["a"], np.ones(4, np.float32))
    with pytest.raises(SourceError, match=rf"m{SHARD}: truncated; tensor 'z_last'"):
        model.tensors["z_last"]


@pytest.mark.parametrize("swap", ["other bytes", "link outside"])
def test_shard_swapped_after_a_read_is_not_read(tmp_path: Path, tmp_path_factory,
                                                swap: str) -> None:
    """The shard is checked (a regular file inside the folder) when first read and kept
    open: another file, or a link out of the folder, put in its place later is never read."""
    prefix = _save(tmp_path / "m", {"a": np.ones(4, np.float32), "z_last": np.ones(9)})
    model = read_checkpoint(prefix)
    np.testing.assert_array_equal(model.tensors["a"], np.ones(4, np.float32))
    shard = Path(f"{prefix}{SHARD}")
    other = bytes(len(shard.read_bytes()))  # zeros: every tensor would fail its crc32c
    shard.unlink()
    if swap == "other bytes":
        shard.write_bytes(other)
    else:
        outside = tmp_path_factory.mktemp("elsewhere") / "shard"
        outside.write_bytes(other)
        shard.symlink_to(outside)
    np.testing.assert_array_equal(model.tensors["z_last"], np.ones(9))
    model.close()  # closes the shard: the next read checks the path again
    with pytest.raises(SourceError, match=rf"m{SHARD}: (tensor 'a' fails its crc32c|data "
                       "shard is a link to .*, outside)"):
        model.tensors["a"]


def test_flipped_data_byte_names_tensor_and_shard(tmp_path: Path) -> None:
    prefix = _save(tmp_path / "m", {"a": np.ones(4, np.float32), "b": np.arange(9.0)})
    model = read_checkpoint(prefix)
    np.testing.assert_array_equal(model.tensors["b"], np.arange(9.0))
    _flip(Path(f"{prefix}{SHARD}"), 16 + 3)  # inside "b", after the 16 bytes of "a"
    with pytest.raises(SourceError, match=rf"m{SHARD}: tensor 'b' fails its crc32c check"):
        model.tensors["b"]  # checked again on every read, not only the first
    np.testing.assert_array_equal(model.tensors["a"], np.ones(4, np.float32))


def test_flipped_string_byte_is_caught(tmp_path: Path) -> None:
    prefix = _save(tmp_path / "m", {"s": np.array([b"abc", b"de"], dtype=object)})
    _flip(Path(f"{prefix}{SHARD}"), 8)
    with pytest.raises(SourceError, match="tensor 's' fails its crc32c check"):
        read_checkpoint(prefix).tensors["s"]


def test_missing_data_shard(mixed_copy: Path) -> None:
    Path(f"{mixed_copy}{SHARD}").unlink()
    with pytest.raises(SourceError, match=rf"model\.ckpt{SHARD}: data shard not found"):
        read_checkpoint(mixed_copy)


def test_unsupported_dtype_raises_on_read(tmp_path: Path) -> None:
    quantized = tf.quantization.quantize(tf.constant([1.0, 2.0]), 0.0, 4.0, tf.qint8).output
    prefix = _save(tmp_path / "m", {"q": quantized, "w": np.ones(2, np.float32)})
    model = read_checkpoint(prefix)
    np.testing.assert_array_equal(model.tensors["w"], np.ones(2, np.float32))
    with pytest.raises(SourceError, match="tensor 'q' has unsupported dtype qint8"):
        model.tensors["q"]


def test_partitioned_tensor_refused_by_name(tmp_path: Path) -> None:
    tensors = {"part": np.ones((2, 4), np.float32), "w": np.ones(2, np.float32)}
    prefix = _save(tmp_path / "m", tensors, slices={"part": "4 4 0,2:-"})
    model = read_checkpoint(prefix)
    assert set(model.tensors) == {"part", "w"}  # the slice entries themselves are hidden
    assert model.tensors.info("part").shape == (4, 4)
    with pytest.raises(SourceError, match="tensor 'part' is partitioned into slices"):
        model.tensors["part"]


def test_not_a_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "junk.index").write_bytes(np.random.default_rng(RNG_SEED).bytes(500))
    with pytest.raises(SourceError, match=r"junk\.index: bad magic number"):
        read_checkpoint(tmp_path / "junk")
