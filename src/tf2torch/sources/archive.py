"""Open published release archives (`mobilenet_v2_1.4_224.tgz`) safely, leaving nothing behind.

The archive is read in one bounded pass (`tarstream.py`): only the members a conversion can
use (checkpoint index and shards, the reference files) are written, into a fresh `tf2torch-*`
temporary folder, or into `extract_to` when given. The temporary folder belongs to the
returned `SourceModel`: it is removed when the model is closed (`with open_source(...) as m:`,
or `m.close()`), garbage-collected, or at interpreter exit, and at once if opening fails.
Errors name the archive and the member, never a path inside the temporary folder.
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from tf2torch.errors import SourceError, Tf2TorchError
from tf2torch.sources.checkpoint.reader import (
    RUNNABLE_PATTERNS,
    find_runnables,
    read_checkpoint,
    release_meta,
)
from tf2torch.sources.model import SourceModel, name_inside
from tf2torch.sources.tarstream import extract_members
from tf2torch.util.budgets import ArchiveLimits
from tf2torch.util.files import check_regular

__all__ = ["open_release_archive"]

_ARCHIVE_SUFFIX_RE = re.compile(r"\.(tgz|tar\.gz|tar)$", re.I)
# What a conversion reads from a release: the checkpoint, its graph, the reference files.
# The rest (eval graphs, info texts, and anything a crafted archive adds) is never written.
_WANTED = ("*.index", "*.data-?????-of-?????", "*.meta",
           *(p for patterns in RUNNABLE_PATTERNS.values() for p in patterns))


def _release_name(archive: Path) -> str:
    return _ARCHIVE_SUFFIX_RE.sub("", archive.name)


def _wanted(name: str) -> bool:
    base = PurePosixPath(name.replace("\\", "/")).name
    return any(fnmatch.fnmatchcase(base, pattern) for pattern in _WANTED)


def _single_index(folder: Path, archive: Path) -> Path:
    indexes = sorted(folder.rglob("*.index"))
    if len(indexes) != 1:
        found = ", ".join(str(p.relative_to(folder)) for p in indexes) or "none"
        raise SourceError(f"{archive}: expected one checkpoint (*.index) inside, found {found}")
    return indexes[0]


def _destination(extract_to: Path | None) -> tuple[Path, bool]:
    """The folder to unpack into, and whether it was made here (so removed whole on failure)."""
    if extract_to is None:
        return Path(tempfile.mkdtemp(prefix="tf2torch-")), True
    made = not extract_to.exists()
    try:
        extract_to.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SourceError(f"{extract_to}: cannot create extraction folder ({exc})") from None
    return extract_to, made


def open_release_archive(path: str | Path, extract_to: str | Path | None = None,
                         limits: ArchiveLimits | None = None) -> SourceModel:
    """Unpack a release `.tgz`/`.tar.gz`/`.tar` within `limits` and read the checkpoint inside.

    `extract_to` is created if needed and kept; by default a temporary folder is used that
    lives as long as the returned model (close it, or use it as a context manager).
    `limits` default to `ArchiveLimits.from_env()`.
    """
    archive = Path(path)
    try:
        check_regular(archive, "archive", SourceError)
    except FileNotFoundError:
        raise SourceError(f"{archive}: no such archive") from None
    limits = limits or ArchiveLimits.from_env()
    dest, made = _destination(Path(extract_to) if extract_to is not None else None)
    written = extract_members(archive, dest, made, _wanted, limits)  # undone on failure
    try:
        model = read_checkpoint(_single_index(dest, archive), confine=dest)
    except BaseException as exc:
        if made:
            shutil.rmtree(dest, ignore_errors=True)
        else:
            _remove(written)
        if isinstance(exc, Tf2TorchError):
            exc.args = (name_inside(str(exc), dest, archive),)
        raise
    release = _release_name(archive)
    model.meta.update({"release": release, **release_meta(release)})
    model.meta["archive"] = archive
    model.meta["extracted_to"] = dest
    model.runnable = {**model.runnable, **find_runnables(dest, release, recursive=True)}
    model.unpacked_from(archive, dest, remove=extract_to is None)
    return model


def _remove(written: list[Path]) -> None:
    """Take back what this call wrote into a folder the user named."""
    for path in reversed(written):
        with contextlib.suppress(OSError):
            path.rmdir() if path.is_dir() else path.unlink()
