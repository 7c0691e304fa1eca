"""Progress bars on stderr, shown only to a person at a terminal (never in pipes, CI or logs)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """Iterate `items` with a bar; `--json` output goes to stdout, so the two never mix."""
    yield from tqdm(
        items, desc=desc, total=total, disable=not sys.stderr.isatty(), leave=False,
        file=sys.stderr,
    )


def counter(desc: str, total: int, unit: str) -> tqdm:
    """A bar advanced by hand (`.update(n)`, `.close()`), with its rate in `unit`s per second."""
    return tqdm(desc=desc, total=total, unit=unit, disable=not sys.stderr.isatty(),
                leave=False, file=sys.stderr, smoothing=0.1)
