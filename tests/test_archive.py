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

from tf2torch.errors import SourceError, UnsafeArchiveError
from tf2torch.sources import open_source
from tf2torch.sources.archive import open_release_archive

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
    model = open_release_archive(release_tgz)
    dest = model.meta["extracted_to"]
    try:
        assert dest.name.startswith("tf2torch-")
        assert dest.parent == Path(tempfile.gettempdir())
        assert list(cwd.iterdir()) == []
        _assert_release(model, release_tgz, dest)
    finally:
        shutil.rmtree(dest)


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
    "symlink-chain": lambda root: ([_link("here", "."), _link("esc", "here/../outside")], "esc"),
    "through-link": lambda root: (
        [_link("a", "."), _link("a/b", ".."), _file("a/b/outside/evil.txt")],
        "a/b",
    ),
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
