"""Declarative weight mapping: source tensor names → module parameters, with full accounting.

A `Rule` turns a source name into a target parameter name (regex with named groups into a
template) and says how to re-lay the array. `map_weights` applies a rule table to a tensor
store and returns a state dict plus a `MappingReport` that accounts for every tensor on
both sides; anything missing, unexplained or mis-shaped fails the conversion by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from tf2torch.errors import MappingError

Transform = Callable[[np.ndarray], np.ndarray]

EMA_SUFFIX = "/ExponentialMovingAverage"


def hwio_to_oihw(kernel: np.ndarray) -> np.ndarray:
    """TF Conv2D kernel (H, W, in, out) → PyTorch (out, in, H, W); also 1×1 classifiers."""
    return kernel.transpose(3, 2, 0, 1)


def depthwise_to_oihw(kernel: np.ndarray) -> np.ndarray:
    """TF depthwise kernel (H, W, C, M) → PyTorch grouped conv (C·M, 1, H, W).

    TF orders output channels c·M + m, which is what a reshape of (C, M) gives.
    """
    h, w, c, m = kernel.shape
    return kernel.transpose(2, 3, 0, 1).reshape(c * m, 1, h, w)


def as_is(array: np.ndarray) -> np.ndarray:
    return array


@dataclass(frozen=True)
class Rule:
    """`pattern` fully matches a source name; `target` is formatted with its named groups.

    Slashes left in a formatted target become dots, so `{scope}` may span several scopes.
    """

    pattern: str
    target: str
    transform: Transform = as_is

    def apply(self, name: str) -> str | None:
        match = re.fullmatch(self.pattern, name)
        if match is None:
            return None
        return self.target.format(**match.groupdict()).replace("/", ".")


@dataclass(frozen=True)
class Ignore:
    """Source tensors that are expected and deliberately unused, with the reason."""

    pattern: str
    reason: str


@dataclass
class MappingReport:
    """Where every tensor went: the proof that nothing was silently dropped."""

    used: dict[str, str] = field(default_factory=dict)        # source name → target param
    ignored: dict[str, str] = field(default_factory=dict)     # source name → reason
    unexplained: list[str] = field(default_factory=list)      # source names no rule covers
    missing: list[str] = field(default_factory=list)          # target params nothing filled
    shape_mismatches: list[str] = field(default_factory=list)
    ema: bool = False                                         # EMA shadows were used

    @property
    def ok(self) -> bool:
        return not (self.unexplained or self.missing or self.shape_mismatches)

    def problems(self) -> list[str]:
        return (
            [f"missing tensor for {t}" for t in self.missing]
            + [f"no rule for source tensor {s}" for s in self.unexplained]
            + self.shape_mismatches
        )

    def raise_for_problems(self, source: str) -> None:
        problems = self.problems()
        if problems:
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise MappingError(f"{source}: " + "; ".join(problems[:5]) + more)

    def to_dict(self) -> dict:
        return {
            "used": len(self.used), "ignored": self.ignored, "unexplained": self.unexplained,
            "missing": self.missing, "shape_mismatches": self.shape_mismatches, "ema": self.ema,
        }


def _derived(name: str) -> bool:
    """Buffers PyTorch keeps that no TF checkpoint stores (BN's batch counter)."""
    return name.endswith("num_batches_tracked")


def map_weights(
    tensors: Mapping[str, np.ndarray], module: torch.nn.Module, rules: tuple[Rule, ...],
    ignores: tuple[Ignore, ...] = (), prefer_ema: bool = True,
) -> tuple[dict[str, torch.Tensor], MappingReport]:
    """Fill `module`'s state dict from `tensors` by `rules`; account for every name.

    With `prefer_ema`, a tensor `X` whose shadow `X/ExponentialMovingAverage` exists is read
    from the shadow (as TF-slim's evaluation graphs do); otherwise shadows are ignored.
    """
    report = MappingReport()
    expected = {k: v for k, v in module.state_dict().items() if not _derived(k)}
    names = set(tensors)
    shadows = {n for n in names if n.endswith(EMA_SUFFIX)}
    report.ema = prefer_ema and bool(shadows)
    state: dict[str, torch.Tensor] = {}
    for name in sorted(names - shadows):
        if _ignore_reason(name, ignores, report):
            continue
        matched = _first_match(rules, name)
        if matched is None:
            report.unexplained.append(name)
            continue
        rule, target = matched
        if target not in expected:
            report.unexplained.append(f"{name} (rule gives {target}, which the model lacks)")
            continue
        read_from = name + EMA_SUFFIX if report.ema and name + EMA_SUFFIX in shadows else name
        array = rule.transform(np.asarray(tensors[read_from]))
        if array.dtype.kind != "f":  # e.g. an index entry's dtype edited to int32: no cast
            report.shape_mismatches.append(
                f"{read_from}: stored as {array.dtype}, {target} needs floating-point weights")
            continue
        want = tuple(expected[target].shape)
        if tuple(array.shape) != want:
            report.shape_mismatches.append(
                f"{read_from}: shape {tuple(array.shape)} after layout change, {target} needs {want}"
            )
            continue
        state[target] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        report.used[read_from] = target
    for shadow in sorted(shadows):
        base = shadow[: -len(EMA_SUFFIX)]
        if shadow in report.used:
            if base in names:
                report.ignored[base] = "raw weight replaced by its EMA shadow"
        elif report.ema:
            report.ignored[shadow] = "EMA shadow of an ignored tensor"
        else:
            report.ignored[shadow] = "EMA shadow (opted out: raw weights used)"
    report.missing = sorted(set(expected) - set(state))
    return state, report


def _first_match(rules: tuple[Rule, ...], name: str) -> tuple[Rule, str] | None:
    for rule in rules:
        target = rule.apply(name)
        if target is not None:
            return rule, target
    return None


def _ignore_reason(name: str, ignores: tuple[Ignore, ...], report: MappingReport) -> bool:
    for ignore in ignores:
        if re.fullmatch(ignore.pattern, name):
            report.ignored[name] = ignore.reason
            return True
    return False
