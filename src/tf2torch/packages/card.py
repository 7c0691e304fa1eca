"""The model card: one frozen dataclass, stored as `card.json` with a schema version."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tf2torch.errors import PackageError

SCHEMA_VERSION = 1
_OPTIONAL = {"notes", "schema_version", "quantization"}


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
        return cls(**data)

    @classmethod
    def read(cls, path: Path) -> Card:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise PackageError(f"{path.parent}: no card.json — not a tf2torch package") from exc
        return cls.from_json(text, str(path))
