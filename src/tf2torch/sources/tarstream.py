"""Read a tar archive in one bounded pass, writing only the members asked for.

Python's `tarfile` trusts the sizes an archive declares: a PAX or GNU long-name header of
gigabytes is read into memory whole, and `extractall` writes whatever a member claims. Here
the decompressed stream sits behind `_Guarded`, which refuses any single read that `tarfile`
makes beyond the header budget, and every member is checked (name, type, size, count, running
total) before a byte of it is written. Only regular files whose names `wanted` accepts are
written; links, devices and traversal names refuse the archive. On any failure, Ctrl-C
included, every file and folder written so far is removed again. The stream is read to its
very end, so a gzip/bz2/xz checksum or length mismatch is always seen.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import os
import re
import shutil
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from tf2torch.errors import SourceError, UnsafeArchiveError
from tf2torch.util.budgets import COMPRESSION_RATIO, ArchiveLimits, env_name

__all__ = ["ArchiveLimitError", "extract_members"]

# Leading bytes of each compressed form → how to decompress it as a stream.
# (Each is closed by `extract_members`' with block.)
_DECOMPRESSORS: dict[bytes, Callable[[BinaryIO], BinaryIO]] = {
    b"\x1f\x8b": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    b"BZh": lambda raw: bz2.BZ2File(raw),
    b"\xfd7zXZ\x00": lambda raw: lzma.LZMAFile(raw),  # noqa: SIM115
}
# What the decompressors and tarfile raise on corrupt or truncated input.
_CORRUPT = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError, ValueError)
_CHUNK = 1 << 16
_INFLATION_FREE = 64 << 20  # bytes unpacked before the ratio is held against the file


class ArchiveLimitError(SourceError):
    """An archive declares more than a budget of `ArchiveLimits` allows."""


class _Guarded:
    """The decompressed stream as tarfile sees it: any one read above `header_limit` outside
    `data()` is a header tarfile would load whole, and is refused before it is read."""

    def __init__(self, stream: BinaryIO, raw: BinaryIO, header_limit: int, archive: Path) -> None:
        self._stream, self._raw, self._limit, self._archive = stream, raw, header_limit, archive
        self._reading_data = False

    def read(self, size: int = -1) -> bytes:
        if not self._reading_data and (size < 0 or size > self._limit):
            raise ArchiveLimitError(
                f"{self._archive}: an archive header declares {size:,} bytes, more than the "
                f"{self._limit:,} allowed ({env_name('header_bytes')}); refused")
        data = self._stream.read(size)
        self.check_inflation()
        return data

    def check_inflation(self) -> None:
        """Decompressing costs CPU by what comes out: past the first 64 MiB, what came out
        may be at most COMPRESSION_RATIO times what went in (real releases hold weights,
        which barely compress; gzip of zeros inflates 1000×)."""
        out = self._stream.tell()
        if out > _INFLATION_FREE and out > COMPRESSION_RATIO.value * max(self._raw.tell(), 1):
            raise ArchiveLimitError(
                f"{self._archive}: unpacks to more than {COMPRESSION_RATIO.value} times its "
                f"size ({COMPRESSION_RATIO.variable}); refused")

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def copy_data(self, source: BinaryIO, target: BinaryIO, size: int) -> int:
        self._reading_data = True
        try:
            written = 0
            while chunk := source.read(min(_CHUNK, size - written)):
                target.write(chunk)
                written += len(chunk)
                self.check_inflation()
            return written
        finally:
            self._reading_data = False


def _open_stream(archive: Path, raw: BinaryIO) -> BinaryIO:
    magic = raw.read(6)
    raw.seek(0)
    for prefix, opener in _DECOMPRESSORS.items():
        if magic.startswith(prefix):
            return opener(raw)
    return raw  # an uncompressed .tar


def _parts(name: str) -> list[str]:
    """Path components, treating backslashes as separators so Windows-style names are caught."""
    return [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]


def _member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a member refuses the archive, or None. Releases hold files and folders only."""
    name = member.name
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return "has an absolute path"
    if ".." in _parts(name):
        return "has a '..' component"
    if member.issym() or member.islnk():
        return f"is a link (to {member.linkname!r}); release archives hold plain files"
    if member.isdev():
        return "is a device file or fifo"
    if not (member.isfile() or member.isdir()):
        return f"has unsupported type {member.type!r}"
    return None


class _Written:
    """Files and folders written under `root`, to be taken back on failure."""

    def __init__(self, root: Path, own_root: bool) -> None:
        self.root, self.own_root, self.paths = root, own_root, []

    def folder(self, parts: list[str]) -> Path:
        path = self.root
        for part in parts:
            path = path / part
            if not path.is_dir():
                path.mkdir()
                self.paths.append(path)
        return path

    def discard(self) -> None:
        if self.own_root:
            shutil.rmtree(self.root, ignore_errors=True)
            return
        for path in reversed(self.paths):
            with contextlib.suppress(OSError):
                path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()


def _refuse(archive: Path, member: tarfile.TarInfo, why: str, limit: str) -> ArchiveLimitError:
    return ArchiveLimitError(f"{archive}: member {member.name!r} {why} ({env_name(limit)}); "
                             "nothing was extracted")


def _check(archive: Path, member: tarfile.TarInfo, count: int, limits: ArchiveLimits) -> None:
    problem = _member_problem(member)
    if problem:
        raise UnsafeArchiveError(f"{archive}: member {member.name!r} {problem}; "
                                 "nothing was extracted")
    if count > limits.members:
        raise _refuse(archive, member, f"is entry {count:,}, more than the {limits.members:,} "
                      "allowed", "members")
    if member.size > limits.member_bytes:
        raise _refuse(archive, member, f"is {member.size:,} bytes, more than the "
                      f"{limits.member_bytes:,} allowed per member", "member_bytes")
    if member.offset_data + member.size > limits.total_bytes:
        raise _refuse(archive, member, f"ends past byte {limits.total_bytes:,} of the unpacked "
                      "archive, more than allowed", "total_bytes")


def _write(tar: tarfile.TarFile, guard: _Guarded, member: tarfile.TarInfo, written: _Written,
           archive: Path) -> None:
    parts = _parts(member.name)
    folder = written.folder(parts[:-1])
    if shutil.disk_usage(folder).free < member.size:
        raise SourceError(f"{archive}: member {member.name!r} needs {member.size:,} bytes, more "
                          f"than {folder.anchor or folder} has free (set TMPDIR elsewhere)")
    target = folder / parts[-1]
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, 0o644)
    except FileExistsError:
        raise UnsafeArchiveError(f"{archive}: member {member.name!r} appears twice; "
                                 "nothing was extracted") from None
    written.paths.append(target)
    source = tar.extractfile(member)
    assert source is not None  # a regular file
    try:
        with source, os.fdopen(fd, "wb") as out:
            got = guard.copy_data(source, out, member.size)
    except OSError as exc:
        if exc.errno is None:  # tarfile's own errors on short data are OSErrors too
            raise
        raise SourceError(f"{archive}: cannot unpack member {member.name!r} into the "
                          f"temporary folder ({exc.strerror}; set TMPDIR elsewhere)") from None
    if got != member.size:
        raise tarfile.ReadError(f"member {member.name!r} ends after {got} of its "
                                f"{member.size} bytes")


def _drain(stream: BinaryIO, guard: _Guarded, archive: Path, limits: ArchiveLimits) -> None:
    """Read to the end, so the decompressor checks its CRC and length (bounded: the padding
    after the end-of-archive blocks counts against the total and the inflation ratio)."""
    while stream.read(_CHUNK):
        guard.check_inflation()
        if stream.tell() > limits.total_bytes:
            raise ArchiveLimitError(f"{archive}: unpacks to more than {limits.total_bytes:,} "
                                    f"bytes ({env_name('total_bytes')}); refused")


def extract_members(archive: Path, dest: Path, own_dest: bool,
                    wanted: Callable[[str], bool], limits: ArchiveLimits) -> list[Path]:
    """Write the regular files `wanted` accepts (by name) under `dest`; the files and folders
    written, in order.

    `own_dest`: `dest` is a folder made for this call and is removed whole on failure;
    otherwise only what was written into it is.
    """
    written = _Written(dest, own_dest)
    try:
        with open(archive, "rb") as raw, _open_stream(archive, raw) as stream:
            guard = _Guarded(stream, raw, limits.header_bytes, archive)
            tar = tarfile.TarFile(fileobj=guard, mode="r")  # type: ignore[arg-type]
            count = 0
            while (member := tar.next()) is not None:
                count += 1
                _check(archive, member, count, limits)
                if member.isfile() and wanted(member.name):
                    _write(tar, guard, member, written, archive)
            tar.members.clear()
            _drain(stream, guard, archive, limits)
        return written.paths
    except SourceError:
        written.discard()
        raise
    except _CORRUPT as exc:
        written.discard()
        detail = str(exc) or type(exc).__name__
        raise SourceError(f"{archive}: corrupt or truncated archive ({detail})") from None
    except BaseException:
        written.discard()
        raise
