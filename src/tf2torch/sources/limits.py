"""Budgets a hostile file cannot talk a reader past: checked before anything is allocated.

Defaults lie far above any published model (the largest TF-slim release unpacks to about
1 GiB); each can be changed with an environment variable, in bytes or with a K/M/G/T suffix
(`TF2TORCH_ARCHIVE_MAX_BYTES=64G`), or per call (`open_release_archive(..., limits=...)`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields

from tf2torch.errors import UsageError

__all__ = ["MAX_CHECKPOINT_SHARDS", "ArchiveLimits"]

# TF names shards `.data-NNNNN-of-MMMMM`; beyond five digits no real bundle goes.
MAX_CHECKPOINT_SHARDS = 99_999

_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE_RE = re.compile(r"\s*(\d+)\s*([KMGT]?)(?:I?B)?\s*", re.I)


def parse_size(text: str, variable: str) -> int:
    """`8G` → 8 GiB; one clear error naming the variable otherwise."""
    match = _SIZE_RE.fullmatch(text)
    if not match:
        raise UsageError(f"{variable}={text!r}: expected a number of bytes, e.g. 8G or 500M")
    return int(match.group(1)) * _SUFFIX[match.group(2).upper()]


@dataclass(frozen=True)
class ArchiveLimits:
    """Ceilings on reading a release archive (`.tgz`, `.tar.gz`, `.tar`).

    `header_bytes`: one PAX or GNU long-name header (Python's tarfile reads a header whole);
    `member_bytes`: one member; `total_bytes`: all members together (what is decompressed);
    `members`: how many entries.
    """

    header_bytes: int = 1 << 20
    member_bytes: int = 8 << 30
    total_bytes: int = 16 << 30
    members: int = 10_000

    @classmethod
    def from_env(cls) -> ArchiveLimits:
        """Defaults, overridden by `TF2TORCH_ARCHIVE_MAX_<FIELD>` where set."""
        values = {}
        for f in fields(cls):
            variable = env_name(f.name)
            if os.environ.get(variable):
                values[f.name] = parse_size(os.environ[variable], variable)
        return cls(**values)


def env_name(field: str) -> str:
    """`member_bytes` → `TF2TORCH_ARCHIVE_MAX_MEMBER_BYTES`."""
    return f"TF2TORCH_ARCHIVE_MAX_{field.upper()}"
