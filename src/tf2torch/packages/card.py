"""The model card: one frozen dataclass, stored as `card.json` with a schema version."""

from __future__ import annotations

import json
import types
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from tf2torch.errors import PackageError
from tf2torch.util.files import read_regular

SCHEMA_VERSION = 1
_OPTIONAL = {"notes", "schema_version", "quantization"}
MAX_CARD_BYTES = 512 << 20   # a graph model's IR can be tens of MB; nothing real comes close
MAX_CARD_STRING = 1 << 20    # one string value: names, file names, notes; never a blob
# Keys inside a field that tf2torch indexes, with the type each must have (when present).
_NESTED: dict[str, dict[str, type | tuple[type, ...]]] = {
    "input": {"shape": list},
    "source": {"file": (str, type(None)), "sha256": (str, type(None))},
    "verification": {"passed": bool},
    "mapping": {"ema": bool},
    "quantization": {"form": str},
    "decoder": {"num_classes": int},
}


@dataclass(frozen=True)
class Card:
    """Everything needed to rebuild, feed, read and trust a converted model.

    `architecture` + `config` rebuild the module (a zoo family, or a graph whose IR is the
    config); `encoder`/`decoder` are the data descriptions from `tf2torch.packages.codecs`;
    `verification` holds the figures of the run that proved the port.
    """

    name: str
    architecture: str
    config: dict[str, Any]
    source: dict[str, Any]          # file, format, sha256, release
    input: dict[str, Any]           # shape (one sample), layout, dtype, value range
    encoder: dict[str, Any] | None
    decoder: dict[str, Any] | None
    weights_sha256: str
    parameters: int
    multiply_adds: int | None
    verification: dict[str, Any] | None
    mapping: dict[str, Any] | None
    license: str
    tf2torch_version: str
    created: str
    notes: list[str] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION
    # a quantized source: what it quantizes, the form converted to (simulate/float), the
    # bound verification used; every tensor's scale/zero point is in config.graph.meta
    quantization: dict[str, Any] | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False)

    @classmethod
    def from_json(cls, text: str, origin: str = "card.json") -> Card:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PackageError(f"{origin}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise PackageError(f"{origin}: expected a JSON object")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise PackageError(
                f"{origin}: schema_version {version!r}, this tf2torch reads {SCHEMA_VERSION}"
            )
        known = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.name not in _OPTIONAL}
        unknown, missing = sorted(set(data) - known), sorted(required - set(data))
        if unknown:
            raise PackageError(f"{origin}: unknown field(s) {unknown}")
        if missing:
            raise PackageError(f"{origin}: missing field(s) {missing}")
        check_field_types(data, origin)
        return cls(**data)

    @classmethod
    def read(cls, path: Path) -> Card:
        """The card at `path`: a regular file (never a link, FIFO or device), checked."""
        try:
            raw = read_regular(path, "card.json", PackageError, follow=False,
                               limit=MAX_CARD_BYTES)
        except FileNotFoundError as exc:
            raise PackageError(f"{path.parent}: no card.json — not a tf2torch package") from exc
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PackageError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") \
                from None
        try:
            return cls.from_json(text, str(path))
        except RecursionError:
            raise PackageError(f"{path}: JSON nested too deeply") from None


@cache
def _hints() -> dict[str, Any]:
    return get_type_hints(Card)


def _accepts(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a field's annotation (`dict[str, Any] | None`, `list[str]`)."""
    if hint is Any:
        return True
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_accepts(value, arg) for arg in get_args(hint))
    if hint is type(None):
        return value is None
    if origin is list:
        (item,) = get_args(hint) or (Any,)
        return isinstance(value, list) and all(_accepts(v, item) for v in value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, origin or hint)


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), "a value")


def check_field_types(data: dict[str, Any], origin: str) -> None:
    """One error naming the first field (or indexed key) whose JSON type is wrong."""
    hints = _hints()
    for name, value in data.items():
        if not _accepts(value, hints[name]):
            hint = hints[name]
            expected = hint.__name__ if isinstance(hint, type) else \
                str(hint).replace("typing.", "")
            raise PackageError(f"{origin}: field {name!r} is {_json_type(value)}, expected "
                               f"{expected}")
        for key, kind in _NESTED.get(name, {}).items():
            if isinstance(value, dict) and key in value and not isinstance(value[key], kind):
                raise PackageError(f"{origin}: field '{name}.{key}' is "
                                   f"{_json_type(value[key])}, which tf2torch cannot use")


def check_string_sizes(value: Any, where: str, limit: int = MAX_CARD_STRING) -> None:
    """Refuse a card whose fields hold a string longer than `limit` (a layer config's blob
    must not be copied into every package), naming where it is."""
    stack = [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str) and len(item) > limit:
            raise PackageError(f"card field {path} is a string of {len(item):,} characters, "
                               f"more than the {limit:,} a card holds; refused")
        if isinstance(item, dict):
            stack.extend((f"{path}.{k}", v) for k, v in item.items())
        elif isinstance(item, (list, tuple)):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(item))
