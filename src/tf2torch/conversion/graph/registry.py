"""Registry of op converters, keyed by `(format, op, version)`.

A converter is a plain function `(node, ctx) -> Lowered`: it reads the node's attributes and
the shapes around it and says which module computes it, in which layout, and which source
tensors fill which parameters. It builds nothing itself and touches no weight data, so the
same converters rebuild a module from the IR alone (`build_from_ir`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tf2torch.errors import UnsupportedError
from tf2torch.sources.ir import Node

# Layouts a lowered module runs in. SOURCE: the source's channels-last order, unchanged.
# CF: channels moved to axis 1 (only differs from SOURCE at rank >= 3). ANY: elementwise,
# runs in whatever layout its inputs are in.
SOURCE, CF, ANY = "source", "cf", "any"

Key = tuple[str, str, int]


@dataclass(frozen=True)
class ModuleSpec:
    """A module as a class name in `tf2torch.conversion.graph.modules` plus literal constructor
    args; an argument may itself be a `ModuleSpec` (a module built first and handed over)."""

    cls: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Binding:
    """Fill module parameter/buffer `param` from source tensor `source` through `transform`
    (a name in `transforms.TRANSFORMS`), or from a constant `value` taken from the config.
    `source` may be a tuple of roles: their tensors, concatenated along axis 0, fill it
    (an LSTM's four per-gate matrices → one torch weight)."""

    param: str
    source: str | tuple[str, ...] | None = None
    transform: str = "identity"
    value: Any = None


@dataclass(frozen=True)
class Lowered:
    """What a converter returns. `ignored` names source tensors the module deliberately does
    not use (role → why), so the weight count check can tell them from forgotten ones."""

    spec: ModuleSpec
    layout: str = ANY
    bindings: tuple[Binding, ...] = ()
    ignored: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LowerContext:
    """What a converter may know about its node's surroundings.

    Shapes exclude the batch dimension and are in the source layout; `static` is False when
    some input size is unknown, so converters must not bake in size-dependent padding.
    """

    input_shapes: tuple[tuple[int, ...], ...]
    input_layouts: tuple[str, ...]
    weight_shapes: dict[str, tuple[int, ...]]
    static: bool
    meta: dict[str, Any]

    @property
    def rank(self) -> int:
        """Rank of the first input, batch included."""
        return len(self.input_shapes[0]) + 1

    def weight_shape(self, role: str) -> tuple[int, ...]:
        return self.weight_shapes[role]

    def has_weight(self, role: str) -> bool:
        return role in self.weight_shapes


Converter = Callable[[Node, LowerContext], Lowered]
GraphCheck = Callable[[Any], None]  # a whole-graph check before lowering (raises)


class Registry:
    """Maps `(format, op, version)` to a converter; each key may be registered once.

    A front-end may also say why it refuses an op (`refuse`, quoted in the unsupported-op
    error) and add whole-graph checks run before anything is built (`add_check`)."""

    def __init__(self) -> None:
        self._converters: dict[Key, Converter] = {}
        self.reasons: dict[tuple[str, str], str] = {}
        self.checks: dict[str, list[GraphCheck]] = {}

    def refuse(self, fmt: str, op: str, why: str) -> None:
        self.reasons[(fmt, op)] = why

    def add_check(self, fmt: str, check: GraphCheck) -> None:
        self.checks.setdefault(fmt, []).append(check)

    def register(self, key: Key, converter: Converter) -> None:
        if key in self._converters:
            raise ValueError(f"converter for {key} already registered "
                             f"({self._converters[key].__name__})")
        self._converters[key] = converter

    def get(self, key: Key) -> Converter:
        try:
            return self._converters[key]
        except KeyError:
            fmt, op, version = key
            raise UnsupportedError(f"no converter for {fmt} op {op!r} (version {version})") from None

    def __contains__(self, key: object) -> bool:
        return key in self._converters

    def keys(self, fmt: str | None = None) -> list[Key]:
        return sorted(k for k in self._converters if fmt is None or k[0] == fmt)
