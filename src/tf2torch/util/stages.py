"""Which stage of a command an exception escaped from, so the CLI can name it in one line.

`with stage("verify"):` marks a stretch of work; an exception leaving it (and not marked by
an inner stage already) carries the name in `stage_of(exc)`. No global state: the name
travels on the exception itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

__all__ = ["stage", "stage_of"]

_ATTRIBUTE = "_tf2torch_stage"


@contextmanager
def stage(name: str) -> Iterator[None]:
    try:
        yield
    except BaseException as exc:
        if getattr(exc, _ATTRIBUTE, None) is None:
            with suppress(AttributeError, TypeError):  # a type that takes no attributes
                setattr(exc, _ATTRIBUTE, name)
        raise


def stage_of(exc: BaseException) -> str | None:
    """The innermost stage `exc` escaped from, if any."""
    return getattr(exc, _ATTRIBUTE, None)
