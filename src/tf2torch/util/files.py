"""Open only regular files: never a FIFO, a device, or a link leading somewhere it should not.

A model folder or package handed to tf2torch may be hostile. Reading a FIFO blocks forever,
`/dev/zero` never ends, and a symlink can point at any file of the user's. So every file a
reader or the repository opens goes through here: the path is checked with `stat` before any
`open`, the file is opened non-blocking (a FIFO swapped in between cannot hang us), and the
opened descriptor is checked again, so a race cannot slip a different kind of file in.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from tf2torch.errors import Tf2TorchError

__all__ = ["check_regular", "open_regular", "read_regular"]

_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder",
          stat.S_IFLNK: "a symbolic link"}


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _inside(path: Path, folder: Path) -> bool:
    real, root = os.path.realpath(path), os.path.realpath(folder)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def check_regular(path: Path, what: str, error: type[Tf2TorchError], *,
                  within: Path | None = None, follow: bool = True) -> os.stat_result:
    """`stat` of `path` after checking that it is a regular file, without opening it.

    `follow=False` refuses a symlink outright; `within` refuses a symlink that resolves
    outside that folder. Missing files raise `FileNotFoundError` for the caller to word.
    """
    if not follow and path.is_symlink():
        raise error(f"{path}: {what} is a symbolic link; tf2torch does not follow links here")
    if within is not None and not _inside(path, within):
        raise error(f"{path}: {what} is a link to {os.path.realpath(path)}, outside "
                    f"{within}; refused")
    info = path.stat() if follow else path.lstat()
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path}: {what} is {_kind(info.st_mode)}, not a regular file; refused")
    return info


def open_regular(path: Path, what: str, error: type[Tf2TorchError], *,
                 within: Path | None = None, follow: bool = True) -> BinaryIO:
    """Open a checked regular file for binary reading (see `check_regular`)."""
    check_regular(path, what, error, within=within, follow=follow)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if not follow and path.is_symlink():  # swapped for a link since the check
            raise error(f"{path}: {what} is a symbolic link; refused") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):  # swapped since the check
        os.close(fd)
        raise error(f"{path}: {what} is {_kind(info.st_mode)}, not a regular file; refused")
    return os.fdopen(fd, "rb")


def read_regular(path: Path, what: str, error: type[Tf2TorchError], *,
                 within: Path | None = None, follow: bool = True,
                 limit: int | None = None) -> bytes:
    """The whole of a checked regular file; `limit` refuses files larger than that."""
    with open_regular(path, what, error, within=within, follow=follow) as file:
        if limit is not None:
            size = os.fstat(file.fileno()).st_size
            if size > limit:
                raise error(f"{path}: {what} is {size:,} bytes, more than the {limit:,} "
                            "allowed; refused")
        return file.read()
