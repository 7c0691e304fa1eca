"""The local model repository: one package folder per name under `$TF2TORCH_HOME/models`."""

from __future__ import annotations

import difflib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tf2torch.errors import PackageError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def home() -> Path:
    """Repository root: `$TF2TORCH_HOME`, default `~/.cache/tf2torch`."""
    return Path(os.environ.get("TF2TORCH_HOME") or Path.home() / ".cache" / "tf2torch")


def models_dir() -> Path:
    return home() / "models"


def check_name(name: str) -> str:
    if not _NAME.match(name) or name in (".", ".."):
        raise PackageError(
            f"invalid model name {name!r}: use letters, digits, '.', '_' and '-' only"
        )
    return name


def entries() -> list[Path]:
    """Every visible entry of the repository, packages or not (`list` notes the bad ones)."""
    root = models_dir()
    if not root.is_dir():
        return []
    sweep_partials(root)
    return sorted((p for p in root.iterdir() if not p.name.startswith(".")),
                  key=lambda p: p.name)


def entry_problem(path: Path) -> str | None:
    """Why a repository entry is not a package tf2torch will read, or None."""
    if path.is_symlink():
        return f"a symbolic link (to {os.readlink(path)}); tf2torch does not follow links " \
               "in the repository (tf2torch remove NAME removes the link)"
    if not path.is_dir():
        return "not a folder"
    if not (path / "card.json").exists() and not (path / "card.json").is_symlink():
        return "no card.json: not a tf2torch package"
    return None


def list_names() -> list[str]:
    return [p.name for p in entries() if entry_problem(p) is None]


def resolve(name_or_path: str | Path) -> Path:
    """A package folder from a repository name or a path; unknown names suggest close ones.
    A repository entry that is a link is refused, never followed."""
    path = Path(name_or_path)
    if path.is_dir() and not (path.is_symlink() and path.parent == models_dir()):
        return path
    name = str(name_or_path)
    candidate = models_dir() / name
    if _NAME.match(name) and candidate.is_symlink():
        raise PackageError(f"{candidate}: repository entry is {entry_problem(candidate)}")
    if _NAME.match(name) and candidate.is_dir():
        return candidate
    names = list_names()
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else (
        f"; the repository holds: {', '.join(names)}" if names else
        f"; the repository at {home()} is empty (tf2torch convert SOURCE publishes there)")
    raise PackageError(f"no model named {name!r}{hint}")


@contextmanager
def staged_write(destination: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `destination`; rename it into place only on success.

    A crash or Ctrl-C inside the block leaves `destination` as it was (absent, or the old
    package), never half-written.
    """
    if destination.is_symlink():  # replacing it could write through the link
        raise PackageError(f"{destination} is a symbolic link (to {os.readlink(destination)}); "
                           "refusing to write through it (remove the link first)")
    if destination.exists() and not overwrite:
        raise PackageError(f"{destination} already exists (use --overwrite to replace it)")
    destination.parent.mkdir(parents=True, exist_ok=True)
    sweep_partials(destination.parent)
    # the writer's pid in the name lets a later sweep tell a dead writer's leftovers from a
    # live one's work in progress
    stage = Path(tempfile.mkdtemp(prefix=f".{destination.name}.partial-{os.getpid()}-",
                                  dir=destination.parent))
    try:
        yield stage
        old = None
        if destination.exists():
            old = destination.with_name(f".{destination.name}.old-{os.getpid()}")
            os.replace(destination, old)
        os.replace(stage, destination)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def remove(name: str) -> Path:
    """Delete a package: a repository name, or a package folder given by path. An entry
    that is a link loses the link only; a folder that is not a package is refused."""
    entry = models_dir() / name
    if _NAME.match(name) and entry.is_symlink():
        entry.unlink()
        return entry
    path = Path(name) if Path(name).is_dir() else resolve(check_name(name))
    if path.is_symlink():
        raise PackageError(f"{path}: a symbolic link; give the package folder itself")
    if not (path / "card.json").is_file():
        raise PackageError(f"{path}: no card.json — not a tf2torch package; not removed")
    shutil.rmtree(path)
    return path


def publish_path(name: str) -> Path:
    return models_dir() / check_name(name)


def sweep_partials(root: Path | None = None,
                   on_removed: Callable[[Path], None] | None = None) -> None:
    """Remove staging and replaced-package folders (`.NAME.partial-PID-*`, `.NAME.old-PID`)
    that a process killed mid-write left in `root` (default: the repository). Folders of a
    writer that is still running are left alone."""
    root = root or models_dir()
    if not root.is_dir():
        return
    for path in [*root.glob(".*.partial-*"), *root.glob(".*.old-*")]:
        match = _LEFTOVER.fullmatch(path.name)
        if match and not _running(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            if on_removed:
                on_removed(path)


_LEFTOVER = re.compile(r"\..+\.(?:partial|old)-(\d+)(?:-.*)?")


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
