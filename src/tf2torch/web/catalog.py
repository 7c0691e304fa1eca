"""The repository as the pages see it: package entries and their files, read safely.

Only repository content is ever served: a package is named by the repository's own name
syntax and must be a folder of `$TF2TORCH_HOME/models` whose real path (symlinks resolved)
stays inside it; a file must be one of the fixed names a package may hold
(`tf2torch.packages.attachments.PACKAGE_FILES`), a regular file, and inside its package's
real folder. Anything else is `NotServed`, which the app turns into a 4xx page.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from tf2torch.errors import PackageError, Tf2TorchError
from tf2torch.packages.attachments import CORE_FILES, ONNX, OPTIONAL_FILES, PACKAGE_FILES, PackageFile
from tf2torch.packages.card import Card
from tf2torch.web import describe

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # the repository's names (repository.py)


class NotServed(PackageError):
    """A request for something the web app does not serve; `status` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ServedFile:
    spec: PackageFile
    path: Path
    size: int

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def size_text(self) -> str:
        return describe.human_bytes(self.size)


@dataclass(frozen=True)
class Entry:
    """One package: its card and files, and what the pages say about it."""

    name: str
    folder: Path
    card: Card
    files: tuple[ServedFile, ...]
    fingerprint: tuple[int, ...] = field(compare=False)

    def file(self, name: str) -> ServedFile | None:
        return next((f for f in self.files if f.name == name), None)

    @cached_property
    def badge(self) -> describe.Badge:
        return describe.badge(self.card)

    @property
    def format(self) -> str:
        return str(self.card.source.get("format", "?"))

    @property
    def format_name(self) -> str:
        return describe.format_name(self.card)

    @property
    def task(self) -> str:
        return describe.task(self.card)

    @property
    def classifies(self) -> bool:
        return self.card.encoder is not None and self.card.decoder is not None

    def matches(self, text: str, fmt: str) -> bool:
        """The index's filter: `text` anywhere in name, task, architecture or source file
        (case-insensitive), and `fmt` the source format (empty: any)."""
        if fmt and fmt != self.format:
            return False
        return all(word in self.search_text for word in text.lower().split())

    @cached_property
    def search_text(self) -> str:
        """What the filter searches (the page's script searches the same text)."""
        return " ".join([self.name, self.task, self.card.architecture, self.format_name,
                         str(self.card.source.get("file", ""))]).lower()


class Catalog:
    """Read-only view of a repository home (`$TF2TORCH_HOME`)."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.models = self.home / "models"

    def names(self) -> list[str]:
        if not self.models.is_dir():
            return []
        return sorted(p.name for p in self.models.iterdir()
                      if _NAME.match(p.name) and p.is_dir() and (p / "card.json").is_file())

    def entries(self) -> tuple[list[Entry], list[tuple[str, str]]]:
        """Every package that can be served, and (name, reason) for those that cannot."""
        good, bad = [], []
        for name in self.names():
            try:
                good.append(self.entry(name))
            except Tf2TorchError as exc:
                bad.append((name, str(exc)))
        return good, bad

    def folder(self, name: str) -> Path:
        """The package folder of `name`, or NotServed (404) naming close matches."""
        if not _NAME.match(name) or name in (".", ".."):
            raise NotServed(404, f"{name!r} is not a package name (letters, digits, '.', '_' "
                                 "and '-' only)")
        folder = self.models / name
        if not (folder.is_dir() and (folder / "card.json").is_file()):
            close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise NotServed(404, f"no package named {name!r} in this repository{hint}")
        if not _inside(folder, self.models):
            raise NotServed(403, f"{name!r} links outside the repository; it is not served")
        return folder

    def entry(self, name: str) -> Entry:
        folder = self.folder(name)
        card = Card.read(_checked(folder / "card.json", folder).path)
        files = [served for spec in (*CORE_FILES, *OPTIONAL_FILES)
                 if (served := _served(folder / spec.name, spec, folder)) is not None]
        if not any(f.spec is ONNX for f in files):
            onnx = self._cached_onnx(card)
            if onnx is not None:
                files.append(onnx)
        weights = next((f for f in files if f.name == "model.safetensors"), None)
        stamp = (folder / "card.json").stat()
        fingerprint = (stamp.st_mtime_ns, stamp.st_size, *(
            (weights.path.stat().st_mtime_ns, weights.size) if weights else ()))
        return Entry(name, folder, card, tuple(files), fingerprint)

    def file(self, name: str, filename: str) -> tuple[Entry, ServedFile]:
        """A downloadable file of a package, or NotServed (404/403)."""
        if filename not in PACKAGE_FILES:
            raise NotServed(404, f"{filename!r} is not a file a package holds (served: "
                                 f"{', '.join(PACKAGE_FILES)})")
        entry = self.entry(name)
        served = entry.file(filename)
        if served is None:
            raise NotServed(404, f"package {name!r} has no {filename}")
        return entry, served

    def _cached_onnx(self, card: Card) -> ServedFile | None:
        """The checked ONNX export `predict --backend onnxruntime` cached for these weights."""
        exports = self.home / "exports"
        path = exports / f"{card.name}-{card.weights_sha256[:16]}.onnx"
        return _served(path, ONNX, exports)


def _inside(path: Path, root: Path) -> bool:
    try:
        real, base = os.path.realpath(path), os.path.realpath(root)
    except OSError:
        return False
    return os.path.commonpath([real, base]) == base and real != base


def _served(path: Path, spec: PackageFile, root: Path) -> ServedFile | None:
    """`path` when it is a regular file inside `root` (a link out of it is refused)."""
    if not path.exists() and not path.is_symlink():
        return None
    return _checked(path, root, spec)


def _checked(path: Path, root: Path, spec: PackageFile | None = None) -> ServedFile:
    if not _inside(path, root):
        raise NotServed(403, f"{root.name}/{path.name} links outside the repository; "
                             "it is not served")
    if not path.is_file():
        raise NotServed(404, f"{root.name}/{path.name} is not a regular file")
    return ServedFile(spec or PACKAGE_FILES[path.name], path, path.stat().st_size)
