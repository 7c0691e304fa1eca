"""Open published release archives (`mobilenet_v2_1.4_224.tgz`) safely.

Every member is checked before anything is written: a single unsafe member (absolute path,
`..` component, link leaving the folder, device file) refuses the whole archive. Extraction goes
to the given folder or a fresh temporary one, never the current directory.
"""

from __future__ import annotations

import re
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path

from tf2torch.errors import SourceError, UnsafeArchiveError
from tf2torch.sources.checkpoint.reader import find_runnables, read_checkpoint, release_meta
from tf2torch.sources.model import SourceModel

__all__ = ["open_release_archive"]

_ARCHIVE_SUFFIX_RE = re.compile(r"\.(tgz|tar\.gz|tar)$", re.I)
# Errors tarfile/gzip/zlib raise on truncated or corrupt input.
_CORRUPT = (tarfile.TarError, EOFError, zlib.error, OSError)


def _release_name(archive: Path) -> str:
    return _ARCHIVE_SUFFIX_RE.sub("", archive.name)


def _parts(name: str) -> list[str]:
    """Path components, treating backslashes as separators so Windows-style names are caught."""
    return [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]


def _is_absolute(name: str) -> bool:
    return name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) is not None


def _link_problem(base: list[str], target: str, symlinks: set[str]) -> str | None:
    """Why a link target is unsafe, or None. `base` is the folder the target is relative to.

    The target is resolved lexically; that matches the filesystem only if no component it
    walks through is itself a link from the archive, so such paths are refused as well.
    """
    if _is_absolute(target):
        return f"links to absolute path {target!r}"
    walked: list[str] = []
    components = base + _parts(target)
    for i, part in enumerate(components):
        if part == "..":
            if not walked:
                return f"links outside the extraction folder ({target!r})"
            walked.pop()
        else:
            walked.append(part)
        if i < len(components) - 1 and "/".join(walked) in symlinks:
            return f"links through another link ({target!r})"
    return None


def _member_problem(member: tarfile.TarInfo, symlinks: set[str]) -> str | None:
    """Why a member is unsafe to extract, or None."""
    name = member.name
    parts = _parts(name)
    if _is_absolute(name):
        return "has an absolute path"
    if ".." in parts:
        return "has a '..' component"
    if any("/".join(parts[:i]) in symlinks for i in range(1, len(parts))):
        return "would be written through a link"
    if member.isdev():
        return "is a device file or fifo"
    if member.issym():
        return _link_problem(parts[:-1], member.linkname, symlinks)
    if member.islnk():
        return _link_problem([], member.linkname, symlinks)  # hard links name archive paths
    if not (member.isfile() or member.isdir()):
        return f"has unsupported type {member.type!r}"
    return None


def _checked_members(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    members = tar.getmembers()  # reads every header, so truncation shows up here
    symlinks: set[str] = set()
    for member in members:
        problem = _member_problem(member, symlinks)
        if problem:
            raise UnsafeArchiveError(
                f"{archive}: member {member.name!r} {problem}; nothing was extracted"
            )
        if member.issym():
            symlinks.add("/".join(_parts(member.name)))
    return members


def _extract(tar: tarfile.TarFile, members: list[tarfile.TarInfo], dest: Path) -> None:
    # The "data" filter (Python ≥ 3.10.12) repeats the checks against the real filesystem and
    # drops setuid bits: defence in depth on top of the checks above.
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, members=members, filter="data")
    else:  # pragma: no cover - older Pythons
        tar.extractall(dest, members=members)


def _single_index(folder: Path, archive: Path) -> Path:
    indexes = sorted(folder.rglob("*.index"))
    if len(indexes) != 1:
        found = ", ".join(str(p.relative_to(folder)) for p in indexes) or "none"
        raise SourceError(f"{archive}: expected one checkpoint (*.index) inside, found {found}")
    return indexes[0]


def _destination(extract_to: Path | None) -> Path:
    if extract_to is None:
        return Path(tempfile.mkdtemp(prefix="tf2torch-"))
    try:
        extract_to.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SourceError(f"{extract_to}: cannot create extraction folder ({exc})") from None
    return extract_to


def _unpack(archive: Path, extract_to: Path | None) -> Path:
    """Check all members, then extract; returns the folder. Nothing is written on refusal."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = _checked_members(tar, archive)
            dest = _destination(extract_to)
            try:
                _extract(tar, members, dest)
            except BaseException:
                if extract_to is None:  # a folder we made: leave nothing half-written behind
                    shutil.rmtree(dest, ignore_errors=True)
                raise
        return dest
    except _CORRUPT as exc:
        detail = str(exc) or type(exc).__name__
        if isinstance(exc, getattr(tarfile, "FilterError", ())):
            raise UnsafeArchiveError(f"{archive}: {detail}; extraction stopped") from None
        raise SourceError(f"{archive}: corrupt or truncated archive ({detail})") from None


def open_release_archive(path: str | Path, extract_to: str | Path | None = None) -> SourceModel:
    """Extract a release `.tgz`/`.tar.gz`/`.tar` safely and read the checkpoint inside.

    `extract_to` is created if needed; by default a fresh `tf2torch-*` temporary folder is used
    (it must outlive the returned model, whose tensors are read lazily from it).
    """
    archive = Path(path)
    if not archive.is_file():
        raise SourceError(f"{archive}: no such archive")
    dest = _unpack(archive, Path(extract_to) if extract_to is not None else None)
    model = read_checkpoint(_single_index(dest, archive))
    release = _release_name(archive)
    model.meta.update({"release": release, **release_meta(release)})
    model.meta["archive"] = archive
    model.meta["extracted_to"] = dest
    model.runnable = {**model.runnable, **find_runnables(dest, release, recursive=True)}
    return model
