"""Release archives: safe extraction, then the checkpoint inside."""

from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch  # noqa: F401  (imported before TensorFlow: their shared libraries clash otherwise)

from tf2torch.errors import SourceError, Tf2TorchError, UnsafeArchiveError
from tf2torch.sources import open_source
from tf2torch.sources.archive import open_release_archive
from tf2torch.util.budgets import ArchiveLimits

tf = pytest.importorskip("tensorflow")

RELEASE = "mobilenet_v2_1.4_224"


def _weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "MobilenetV2/Conv/weights": rng.standard_normal((3, 3, 3, 48)).astype(np.float32),
        "MobilenetV2/Conv/BatchNorm/gamma": rng.standard_normal(48).astype(np.float32),
        "global_step": np.int64(1000),
    }


@pytest.fixture(scope="module")
def release_dir(tmp_path_factory) -> Path:
    """The files of a published TF-slim release, with a real TF-written checkpoint."""
    folder = tmp_path_factory.mktemp("release")
    weights = _weights()
    tf.raw_ops.SaveV2(
        prefix=str(folder / f"{RELEASE}.ckpt"),
        tensor_names=list(weights),
        shape_and_slices=[""] * len(weights),
        tensors=[tf.constant(v) for v in weights.values()],
    )
    for suffix in (".ckpt.meta", "_frozen.pb", ".tflite", "_eval.pbtxt", "_info.txt"):
        (folder / f"{RELEASE}{suffix}").write_bytes(b"stub " + suffix.encode())
    return folder


def _pack(archive: Path, folder: Path, mode: str = "w:gz") -> Path:
    """Pack like the published releases: every member as `./<file>`."""
    with tarfile.open(archive, mode) as tar:
        tar.add(folder, arcname=".")
    return archive


@pytest.fixture(scope="module")
def release_tgz(release_dir: Path, tmp_path_factory) -> Path:
    return _pack(tmp_path_factory.mktemp("tgz") / f"{RELEASE}.tgz", release_dir)


def _assert_release(model, archive: Path, dest: Path) -> None:
    assert model.format == "tf-checkpoint"
    assert model.meta["release"] == RELEASE
    assert model.meta["input_size"] == 224
    assert model.meta["archive"] == archive
    assert model.path == dest / f"{RELEASE}.ckpt"
    assert model.runnable == {
        "tflite": dest / f"{RELEASE}.tflite",
        "frozen_pb": dest / f"{RELEASE}_frozen.pb",
        "meta_graph": dest / f"{RELEASE}.ckpt.meta",  # the graph path's way in, if no zoo fits
    }
    for name, value in _weights().items():
        np.testing.assert_array_equal(model.tensors[name], value)


@pytest.mark.parametrize(("suffix", "mode"), [(".tgz", "w:gz"), (".tar.gz", "w:gz"), (".tar", "w")])
def test_open_release_archive(release_dir: Path, tmp_path: Path, suffix: str, mode: str) -> None:
    archive = _pack(tmp_path / f"{RELEASE}{suffix}", release_dir, mode)
    dest = tmp_path / "out" / "nested"
    _assert_release(open_release_archive(archive, extract_to=dest), archive, dest)


def test_open_source_dispatches_archives(release_tgz: Path, tmp_path: Path) -> None:
    model = open_source(release_tgz, extract_to=tmp_path / "out")
    _assert_release(model, release_tgz, tmp_path / "out")


def test_default_extraction_is_a_fresh_temp_folder(
    release_tgz: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    with open_release_archive(release_tgz) as model:
        dest = model.meta["extracted_to"]
        assert dest.name.startswith("tf2torch-")
        assert dest.parent == Path(tempfile.gettempdir())
        assert list(cwd.iterdir()) == []
        _assert_release(model, release_tgz, dest)
        # only what a conversion reads was written: not the eval graph nor the info text
        assert sorted(p.name for p in dest.iterdir()) == sorted(
            f"{RELEASE}{s}" for s in (".ckpt.index", ".ckpt.data-00000-of-00001", ".ckpt.meta",
                                      "_frozen.pb", ".tflite"))
    assert not dest.exists()  # the model's folder goes with it


def test_temp_folder_removed_when_the_model_is_collected(release_tgz: Path) -> None:
    import gc

    model = open_release_archive(release_tgz)
    dest = model.meta["extracted_to"]
    assert dest.is_dir()
    del model
    gc.collect()
    assert not dest.exists()


# --- unsafe members ------------------------------------------------------------------------------


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, io.BytesIO(data)


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _device(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info, None


# Each case: members after a harmless first file, and the member the refusal must name.
UNSAFE: dict[str, Callable[[Path], tuple[list, str]]] = {
    "dotdot": lambda root: ([_file("./../outside/evil.txt")], "./../outside/evil.txt"),
    "absolute": lambda root: ([_file(f"{root}/outside/evil.txt")], f"{root}/outside/evil.txt"),
    "symlink-up": lambda root: ([_link("up", "../outside")], "up"),
    "symlink-absolute": lambda root: ([_link("abs", f"{root}/outside")], "abs"),
    # releases hold plain files only: any link refuses the archive, even one that stays inside
    "symlink-chain": lambda root: ([_link("here", "."), _link("esc", "here/../outside")], "here"),
    "through-link": lambda root: (
        [_link("a", "."), _link("a/b", ".."), _file("a/b/outside/evil.txt")],
        "a",
    ),
    "symlink-inside": lambda root: ([_link("alias.txt", "good.txt")], "alias.txt"),
    "duplicate": lambda root: ([_file("./good.txt.index"), _file("good.txt.index")],
                               "good.txt.index"),
    "hardlink-up": lambda root: ([_link("hard", "../outside/evil.txt", tarfile.LNKTYPE)], "hard"),
    "device": lambda root: ([_device("null")], "null"),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_member_refused_before_extracting(tmp_path: Path, case: str) -> None:
    root = tmp_path / "root"
    (root / "outside").mkdir(parents=True)
    members, culprit = UNSAFE[case](root)
    archive = root / f"{RELEASE}.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        for info, data in [_file("./good.txt"), *members]:
            tar.addfile(info, data)
    dest = root / "out"
    with pytest.raises(UnsafeArchiveError, match="nothing was extracted") as caught:
        open_release_archive(archive, extract_to=dest)
    assert f"member {culprit!r}" in str(caught.value)
    assert str(archive) in str(caught.value)
    assert not dest.exists()
    assert list((root / "outside").iterdir()) == []


# --- corrupt archives -----------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_gzip(release_tgz: Path, tmp_path: Path, keep: float) -> None:
    data = release_tgz.read_bytes()
    archive = tmp_path / release_tgz.name
    archive.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(SourceError, match="corrupt or truncated archive") as caught:
        open_release_archive(archive, extract_to=tmp_path / "out")
    assert str(archive) in str(caught.value)
    assert not isinstance(caught.value, UnsafeArchiveError)


def test_not_an_archive(tmp_path: Path) -> None:
    archive = tmp_path / f"{RELEASE}.tgz"
    archive.write_bytes(b"this is not gzip data" * 10)
    with pytest.raises(SourceError, match=rf"{RELEASE}\.tgz: corrupt or truncated archive"):
        open_release_archive(archive, extract_to=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_archive_without_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "readme.txt").write_text("no weights here")
    archive = _pack(tmp_path / "empty.tgz", tmp_path / "src")
    with pytest.raises(SourceError, match=r"empty\.tgz: expected one checkpoint.*found none"):
        open_release_archive(archive, extract_to=tmp_path / "out")


def test_missing_archive(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"nope\.tgz: no such archive"):
        open_release_archive(tmp_path / "nope.tgz")


# --- budgets: headers, members, totals ------------------------------------------------------------


def _header_bomb(archive: Path, kind: bytes, size: int) -> Path:
    """A `.tgz` whose first header declares `size` bytes of PAX/GNU long-name data (the data
    itself is absent: a reader that trusts the size allocates it before noticing)."""
    info = tarfile.TarInfo("././@LongLink" if kind == tarfile.GNUTYPE_LONGNAME else "pax")
    info.type, info.size = kind, size
    with tarfile.open(archive, "w:gz") as tar:
        tar.fileobj.write(info.tobuf(tarfile.GNU_FORMAT))
    return archive


@pytest.mark.parametrize("kind", [tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME])
def test_header_bombs_refused_before_reading(tmp_path: Path, kind: bytes) -> None:
    import resource

    archive = _header_bomb(tmp_path / f"{RELEASE}.tgz", kind, 1 << 40)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(SourceError, match=r"header declares 1,099,511,627,776 bytes, more than "
                       r"the 1,048,576 allowed \(TF2TORCH_ARCHIVE_MAX_HEADER_BYTES\)") as caught:
        open_release_archive(archive, extract_to=tmp_path / "out")
    assert str(archive) in str(caught.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 << 10  # KiB
    assert not (tmp_path / "out").exists()


def test_long_names_within_the_header_budget(release_dir: Path, tmp_path: Path) -> None:
    """Real long-name headers pass under the default budget and are refused under a small one."""
    deep = tmp_path / "src" / ("d" * 120) / ("e" * 120)
    shutil.copytree(release_dir, deep)
    archive = _pack(tmp_path / f"{RELEASE}.tgz", tmp_path / "src", "w:gz")
    with open_release_archive(archive) as model:
        assert model.tensors["global_step"] == 1000
    with pytest.raises(SourceError, match="header declares 512 bytes"):
        open_release_archive(archive, limits=ArchiveLimits(header_bytes=100))


@pytest.mark.parametrize(("limits", "message"), [
    (ArchiveLimits(member_bytes=1000), r"more than the 1,000 allowed per member "
                                       r"\(TF2TORCH_ARCHIVE_MAX_MEMBER_BYTES\)"),
    (ArchiveLimits(total_bytes=4000), r"of the unpacked archive, more than allowed "
                                      r"\(TF2TORCH_ARCHIVE_MAX_TOTAL_BYTES\)"),
    (ArchiveLimits(members=3), r"is entry 4, more than the 3 allowed"),
])
def test_member_budgets(release_tgz: Path, tmp_path: Path, limits: ArchiveLimits,
                        message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(SourceError, match=message) as caught:
        open_release_archive(release_tgz, limits=limits)
    assert str(release_tgz) in str(caught.value) and "member '" in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # the partial extraction is gone


def test_budgets_from_the_environment(release_tgz: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF2TORCH_ARCHIVE_MAX_MEMBER_BYTES", "1K")
    assert ArchiveLimits.from_env().member_bytes == 1024
    with pytest.raises(SourceError, match="more than the 1,024 allowed per member"):
        open_release_archive(release_tgz)
    monkeypatch.setenv("TF2TORCH_ARCHIVE_MAX_MEMBER_BYTES", "lots")
    with pytest.raises(Tf2TorchError, match="TF2TORCH_ARCHIVE_MAX_MEMBER_BYTES='lots'"):
        ArchiveLimits.from_env()


class _Zeros:
    """A file of `size` zero bytes, read without holding them."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


def test_inflation_bomb_refused_early(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A member of 160 MiB of zeros gzips to ~160 KiB: past the first 64 MiB unpacked, the
    ratio (over 200) refuses the archive, long before the 16 GiB total would."""
    archive = tmp_path / f"{RELEASE}.tgz"
    info = tarfile.TarInfo(f"{RELEASE}.ckpt.data-00000-of-00001")
    info.size = 160 << 20
    with tarfile.open(archive, "w:gz") as tar:
        tar.addfile(info, _Zeros(info.size))
    assert archive.stat().st_size < 1 << 20
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with pytest.raises(SourceError, match=r"unpacks to more than 200 times its size "
                                          r"\(TF2TORCH_MAX_COMPRESSION_RATIO\); refused"):
        open_release_archive(archive)
    assert list((tmp_path / "tmp").iterdir()) == []  # the partial member is gone
    monkeypatch.setenv("TF2TORCH_MAX_COMPRESSION_RATIO", "100000")  # allowed: no checkpoint
    with pytest.raises(SourceError, match="checkpoint"):
        open_release_archive(archive)


def test_gzip_checksum_is_checked(release_tgz: Path, tmp_path: Path) -> None:
    """A flipped CRC in the gzip trailer: seen only by reading to the very end."""
    data = bytearray(release_tgz.read_bytes())
    data[-8] ^= 0xFF
    archive = tmp_path / release_tgz.name
    archive.write_bytes(bytes(data))
    with pytest.raises(SourceError, match=r"corrupt or truncated archive \(CRC check failed"):
        open_release_archive(archive, extract_to=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_errors_name_the_archive_and_member(release_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(release_dir, broken)
    shard = broken / f"{RELEASE}.ckpt.data-00000-of-00001"
    data = bytearray(shard.read_bytes())
    data[0] ^= 0xFF  # the first tensor's bytes: its crc32c no longer matches
    shard.write_bytes(bytes(data))
    archive = _pack(tmp_path / f"{RELEASE}.tgz", broken)
    with pytest.raises(SourceError, match="fails its crc32c check") as caught, \
            open_release_archive(archive) as model:
        for name in model.tensors:
            model.tensors[name]
    message = str(caught.value)
    assert f"{archive} (member {RELEASE}.ckpt.data-00000-of-00001)" in message
    assert "tf2torch-" not in message
    (broken / f"{RELEASE}.ckpt.index").write_bytes(b"garbage" * 20)
    archive = _pack(tmp_path / f"{RELEASE}.tgz", broken)
    with pytest.raises(SourceError, match="bad magic") as caught:
        open_release_archive(archive)
    assert f"{archive} (member {RELEASE}.ckpt.index)" in str(caught.value)
    assert "tf2torch-" not in str(caught.value)
