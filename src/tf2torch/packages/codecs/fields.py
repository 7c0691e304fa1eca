"""JSON (de)serialisation shared by the encoder and decoder: unknown and missing keys refused by name.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from tf2torch.errors import PackageError


def check_field(ok: bool, owner: str, field: str, why: str) -> None:
    if not ok:
        raise PackageError(f"{owner}: field '{field}' {why}")


def from_json_dict(cls: type, data: Any) -> Any:
    """Build a dataclass from a JSON dict, refusing missing and unknown keys by name."""
    owner = cls.__name__.lower()
    if not isinstance(data, dict):
        raise PackageError(f"{owner}: expected a JSON object, got {type(data).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        check_field(key in names, owner, key, f"is unknown (expected: {', '.join(names)})")
    for name in names:
        check_field(name in data, owner, name, "is missing")
    return cls(**data)


def to_json_dict(obj: Any) -> dict[str, Any]:
    """Fields as JSON-ready values (tuples become lists)."""
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
