"""Ceilings a model file's declarations are checked against before anything is allocated.

A reader compares what a file *declares* (shapes, element counts, member sizes, nesting) with
these ceilings and with the file's real size, and refuses the file in one line before numpy,
torch or zlib allocate what it asks for. The defaults sit far above any real model; each can
be raised (or lowered) through an environment variable, read at every check:

| variable                             | default  | what it bounds                           |
|--------------------------------------|----------|------------------------------------------|
| `TF2TORCH_MAX_WEIGHT_BYTES`          | 8 GiB    | all weights of a model, decoded          |
| `TF2TORCH_MAX_ACTIVATION_ELEMENTS`   | 10⁸      | elements of one tensor at the built size |
| `TF2TORCH_MAX_COMPRESSION_RATIO`     | 200      | unpacked / stored size: a zip member, a  |
|                                      |          | release archive (past its first 64 MiB)  |
| `TF2TORCH_MAX_JSON_DEPTH`            | 100      | nesting of a JSON config                 |
| `TF2TORCH_MAX_JSON_BYTES`            | 64 MiB   | size of a JSON config                    |

Sizes take a K/M/G/T suffix (`8G`). Release archives have their own ceilings
(`ArchiveLimits`, `TF2TORCH_ARCHIVE_MAX_*`), and a checkpoint header at most
`MAX_CHECKPOINT_SHARDS` shards.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from tf2torch.errors import SourceError, UsageError

_GiB = 1 << 30


@dataclass(frozen=True)
class Budget:
    variable: str
    default: int
    what: str

    @property
    def value(self) -> int:
        raw = os.environ.get(self.variable)
        if raw is None or not raw.strip():
            return self.default
        return max(parse_size(raw, self.variable), 1)


WEIGHT_BYTES = Budget("TF2TORCH_MAX_WEIGHT_BYTES", 8 * _GiB, "bytes of weights")
ACTIVATION_ELEMENTS = Budget("TF2TORCH_MAX_ACTIVATION_ELEMENTS", 10**8,
                             "elements in one tensor")
COMPRESSION_RATIO = Budget("TF2TORCH_MAX_COMPRESSION_RATIO", 200, "compression ratio")
JSON_DEPTH = Budget("TF2TORCH_MAX_JSON_DEPTH", 100, "levels of JSON nesting")
JSON_BYTES = Budget("TF2TORCH_MAX_JSON_BYTES", 64 << 20, "bytes of JSON")


def element_count(shape: Iterable[Any]) -> int:
    """Exact product of a shape (Python ints: no int64 overflow); unknown (None/-1) counts 1."""
    count = 1
    for d in shape:
        count *= 1 if d is None or int(d) < 0 else int(d)
    return count


def check(budget: Budget, amount: int, where: str) -> None:
    """Refuse `amount` above `budget`, naming `where` (file and node or tensor)."""
    limit = budget.value
    if amount > limit:
        raise SourceError(f"{where}: declares {amount:,} {budget.what}, above the ceiling of "
                          f"{limit:,} (raise {budget.variable} if the model is real)")


def check_shape(shape: Iterable[Any], where: str) -> int:
    """A tensor's declared shape: no negative sizes beyond "unknown", within the element
    ceiling. Returns its element count."""
    dims = list(shape)
    for d in dims:
        if d is not None and not isinstance(d, int):
            raise SourceError(f"{where}: shape {dims} holds {d!r}, not a size")
        if d is not None and d < -1:
            raise SourceError(f"{where}: shape {dims} has a negative size")
    count = element_count(dims)
    check(ACTIVATION_ELEMENTS, count, where)
    return count


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


def json_depth(raw: bytes) -> int:
    """Deepest nesting of `[`/`{` outside strings (without building anything)."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRING.sub(b'""', raw)):
        depth += 1 if match.group() in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def load_json(raw: bytes | str, where: str) -> Any:
    """`json.loads` with the size and nesting bounded first; a malformed document is a
    `SourceError` naming `where`."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    check(JSON_BYTES, len(data), where)
    check(JSON_DEPTH, json_depth(data), where)
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as err:
        raise SourceError(f"{where}: not valid JSON ({err})") from None


# --- release archives and checkpoint headers ---------------------------------------------

# TF names shards `.data-NNNNN-of-MMMMM`; beyond five digits no real bundle goes.
MAX_CHECKPOINT_SHARDS = 99_999

_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE_RE = re.compile(r"\s*(\d+)\s*([KMGT]?)(?:I?B)?\s*", re.I)


def parse_size(text: str, variable: str) -> int:
    """`8G` → 8 GiB, `1e9` → 10⁹; one clear error naming the variable otherwise."""
    match = _SIZE_RE.fullmatch(text)
    if match:
        return int(match.group(1)) * _SUFFIX[match.group(2).upper()]
    try:
        return int(float(text))
    except ValueError:
        raise UsageError(f"{variable}={text!r}: expected a number, e.g. 1e8, 8G or 500M") \
            from None


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
