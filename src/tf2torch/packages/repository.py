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


def list_names() -> list[str]:
    root = models_dir()
    if not root.is_dir():
        return []
    sweep_partials(root)
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / "card.json").exists())


def resolve(name_or_path: str | Path) -> Path:
    """A package folder from a repository name or a path; unknown names suggest close ones."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    name = str(name_or_path)
    candidate = models_dir() / name
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
    path = resolve(check_name(name)) if not Path(name).is_dir() else Path(name)
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
