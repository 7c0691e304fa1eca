"""Mutation checks for op converters: does a wrong converter make a test fail?

A pytest plugin (loaded by conftest.py). With `--mutate`, the session first runs the selected
tests normally, recording which registered converters each test lowers through
(`Registry.get`). Then, for every converter (or a seeded `--mutate-sample` of them), it builds
mutants of what the converter produces and reruns, fastest first, the tests that exercise it
until one fails:

- `negate:<param>`   one weight bound from the source, sign flipped (survives when the tests'
                     weights for it are all zero: a bias or PReLU alpha left at its default);
- `swap:<param>`     a weight with two equal dimensions (a square kernel) transposed there;
- `attr:<kwarg>`     one constructor argument of the runtime module changed: a flag flipped,
                     a number moved, an axis shifted, a tuple reversed, an activation or
                     padding mode replaced;
- `output`           where none of those applies (no weights, no argument: an identity, a
                     flatten), the module's output off by 1%.

A mutant some test kills is fine; one no test kills is a survivor. The report (terminal,
and JSON with `--mutate-report FILE`) lists every converter, its mutants and survivors, and
converters no selected test exercises; the session fails when anything survives.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _pytest.runner import runtestprotocol

from tf2torch.conversion.graph.converters import default_registry
from tf2torch.conversion.graph.registry import Binding, Lowered, ModuleSpec, Registry
from tf2torch.conversion.graph.transforms import TRANSFORMS

Key = tuple[str, str, int]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mutation", "mutation checks of the op converters")
    group.addoption("--mutate", action="store_true",
                    help="after the tests, mutate every converter they exercise and rerun them")
    group.addoption("--mutate-sample", type=int, default=0, metavar="N",
                    help="mutate only N converters, chosen with --mutate-seed (0: all)")
    group.addoption("--mutate-seed", type=int, default=0)
    group.addoption("--mutate-only", default="", metavar="FMT:OP[,..]",
                    help="mutate only these converters, e.g. keras:Conv2D,tflite:ADD")
    group.addoption("--mutate-report", type=Path, metavar="FILE",
                    help="write the report as JSON")
    group.addoption("--mutate-require-all", action="store_true",
                    help="also fail when a registered converter is exercised by no test")


# --- which tests reach which converter ------------------------------------------------------

@dataclass
class _Recorder:
    current: str | None = None
    seen: dict[str, set[Key]] = field(default_factory=dict)
    mutant: Mutant | None = None
    examples: bool = False         # keep one output of each converter (with --mutate)

    def record(self, key: Key) -> None:
        if self.current is not None:
            self.seen.setdefault(self.current, set()).add(key)


RECORDER = _Recorder()
_ORIGINAL_GET = Registry.get


def _recording_get(self: Registry, key: Key) -> Callable:
    """The converter, wrapped so that a test counts as exercising it only when it is called
    (a test that merely looks every key up, to check names or docs, lowers nothing)."""
    converter = _ORIGINAL_GET(self, key)

    def recording(node: Any, ctx: Any) -> Lowered:
        RECORDER.record(key)
        mutant = RECORDER.mutant
        if mutant is not None:
            return (mutant.wrap(converter) if mutant.key == key else converter)(node, ctx)
        lowered = converter(node, ctx)
        if RECORDER.examples and key not in EXAMPLES:
            EXAMPLES[key] = _Example(lowered, dict(ctx.weight_shapes))
        return lowered

    recording.__name__ = converter.__name__
    return recording


# --- mutants --------------------------------------------------------------------------------

_ACTIVATIONS = ("linear", "relu")
_PADDINGS = ("same", "valid")
_ORDERLESS = ("axes",)  # tuples whose order does not matter: reversing them changes nothing

_KINDS = ("avg", "max")
# Operand order cannot matter to these ops: swapping which operand is the constant is no change.
_COMMUTATIVE = {"add", "mul", "multiply", "maximum", "minimum"}
_OPERAND_ORDER = {"const_first", "constant_first"}

# Mutants that cannot change a result, by converter and mutant name, with the reason.
EQUIVALENT: dict[tuple[str, str, str], str] = {
    ("tflite", "MIRROR_PAD", "attr:value"): "the fill value applies to constant padding only",
    ("tensorflow", "LogicalOr", "attr:op"): "the replacement op is the table's first other "
    "entry, add, and on booleans (LogicalOr takes no other type) torch's add is a logical or",
    ("tflite", "SQUARED_DIFFERENCE", "attr:activation"): "a square is never negative: a ReLU "
    "after it changes nothing",
    ("tflite", "BIDIRECTIONAL_SEQUENCE_LSTM", "attr:proj_clip"): "clips a projection's "
    "output; TensorFlow's converter writes fused bidirectional LSTMs without projection",
    ("tflite", "RANGE", "attr:dtype"): "values that feed another op are cast to that op's "
    "recorded types, so the dtype shows only where a RANGE is itself a model output (the "
    "verification's dtype check covers that; no fixture has one: a known gap)",
    ("tflite", "BIDIRECTIONAL_SEQUENCE_LSTM", "attr:cell_clip"): "over the fixtures' 12 steps "
    "|c| grows by at most 1 a step: a clip at 10 or 15 moves o·tanh(c) by < 1e-6 (a longer "
    "sequence would show it; a known gap)",
    ("tensorflow", "Select", "attr:rows"): "the module reshapes only a vector condition, "
    "which the converter marks as rows itself; elsewhere the flag is unread",
    ("tensorflow", "MirrorPad", "attr:value"): "the fill value applies to constant padding "
    "only",
    ("tflite", "L2_POOL_2D", "attr:activation"): "a root of a mean of squares is never "
    "negative: a ReLU after it changes nothing",
    **{("tflite", "BIDIRECTIONAL_SEQUENCE_LSTM", f"negate:lstm.bias_hh_l0{d}"): "TFLite has "
       "one bias per gate, in bias_ih; torch's second bias is zero" for d in ("", "_reverse")},
    **{("tensorflow", op, "attr:same_shape"): "a hint for lowering (the output's shape "
       "without a meta run), unused by comparisons and exact where the converter sets it"
       for op in ("Equal", "NotEqual", "Less", "LessEqual", "Greater", "GreaterEqual",
                  "RealDiv")},
    **{("tflite", op, "attr:keep_batch"): "the recorded output shape's batch is -1 (dynamic): "
       "reshaping to it keeps the batch either way" for op in ("EXPAND_DIMS", "SQUEEZE")},
}


@dataclass(frozen=True)
class Mutant:
    key: Key
    name: str                      # negate:<param> | swap:<param> | attr:<kwarg>
    change: Callable[[Lowered, Any], Lowered | None]

    def wrap(self, converter: Callable) -> Callable:
        def mutated(node: Any, ctx: Any) -> Lowered:
            lowered = converter(node, ctx)
            return self.change(lowered, ctx) or lowered

        mutated.__name__ = f"{converter.__name__}__{self.name}"
        return mutated


def _register_transform(name: str, fn: Callable[[np.ndarray], np.ndarray]) -> str:
    """Weight transforms are looked up by name in TRANSFORMS; a mutant adds its own."""
    key = f"mutant__{len(TRANSFORMS)}__{name}"
    TRANSFORMS[key] = fn
    return key


def _resolve_transform(name: str) -> Callable[[np.ndarray], np.ndarray]:
    from tf2torch.conversion.graph.lower import _qualified

    return _qualified(name, TRANSFORMS)


def _with_binding(lowered: Lowered, index: int, binding: Binding) -> Lowered:
    bindings = list(lowered.bindings)
    bindings[index] = binding
    return replace(lowered, bindings=tuple(bindings))


def _negate(index: int) -> Callable[[Lowered, Any], Lowered]:
    def change(lowered: Lowered, ctx: Any) -> Lowered:
        b = lowered.bindings[index]
        if b.source is None:
            return _with_binding(lowered, index, replace(b, value=-np.asarray(b.value)))
        inner = _resolve_transform(b.transform)
        name = _register_transform("negate", lambda a: -inner(a))
        return _with_binding(lowered, index, replace(b, transform=name))

    return change


def _swap_axes(shape: tuple[int, ...]) -> tuple[int, int] | None:
    for i in range(len(shape)):
        for j in range(i + 1, len(shape)):
            if shape[i] == shape[j] > 1:
                return i, j
    return None


def _swap(index: int, axes: tuple[int, int]) -> Callable[[Lowered, Any], Lowered]:
    def change(lowered: Lowered, ctx: Any) -> Lowered:
        b = lowered.bindings[index]
        inner = _resolve_transform(b.transform)
        name = _register_transform("swap", lambda a: inner(np.swapaxes(a, *axes).copy()))
        return _with_binding(lowered, index, replace(b, transform=name))

    return change


def _runtime_class(spec: ModuleSpec) -> type:
    from tf2torch.conversion.graph import modules
    from tf2torch.conversion.graph.lower import _qualified

    return _qualified(spec.cls, vars(modules))


def _other_entry(cls: type, value: str) -> str | None:
    """Another key of the table (in the runtime class's module) that `value` names an entry
    of: an elementwise op or activation replaced by one that computes something else."""
    tables = [v for k, v in vars(sys.modules[cls.__module__]).items()
              if k.isupper() and isinstance(v, dict) and value in v]
    for table in tables:
        if "linear" in table:
            return "relu" if value == "linear" else "linear"
        others = [k for k, fn in table.items() if k != value and fn is not table[value]]
        if others:
            return others[0]
    return None


def _changed_value(name: str, value: Any, cls: type) -> Any:
    """A different value of the same kind, or None when no meaningful change exists."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value - 1 if name in ("axis", "dim") and value > 0 else value + 1
    if isinstance(value, float):
        return value * 1.5 + 0.1
    if isinstance(value, str):
        if name == "activation":
            return "relu" if value == "linear" else "linear"
        for pair in (_PADDINGS, _KINDS):
            if value in pair:
                return pair[1 - pair.index(value)]
        return _other_entry(cls, value)
    if name == "literals" and value:  # (operand position, value, dtype) entries: keyed, so
        pos, literal, dtype = value[0]  # change the first one's value, not the order
        new = _changed_value("value", literal, cls)
        return None if new is None else type(value)([(pos, new, dtype), *value[1:]])
    if isinstance(value, tuple | list) and value:
        if name not in _ORDERLESS and len(value) > 1 and list(value) != list(value)[::-1]:
            return type(value)(reversed(value))
        first = _changed_value(name, value[0], cls)
        return None if first is None else type(value)([first, *value[1:]])
    return None


def _attribute(kwarg: str, new: Any) -> Callable[[Lowered, Any], Lowered]:
    def change(lowered: Lowered, ctx: Any) -> Lowered:
        if kwarg not in lowered.spec.kwargs:
            return lowered
        kwargs = {**lowered.spec.kwargs, kwarg: new}
        return replace(lowered, spec=ModuleSpec(lowered.spec.cls, kwargs))

    return change


def _perturbed_output(lowered: Lowered, ctx: Any) -> Lowered:
    """The same module with its output scaled by 1.01 and shifted by 0.01: a subclass put
    beside the original, where lowering looks classes up by name."""
    import importlib

    from tf2torch.conversion.graph import modules

    cls = _runtime_class(lowered.spec)
    name = f"Perturbed{cls.__name__}"
    owner_name, _, _ = lowered.spec.cls.rpartition(":")
    owner = importlib.import_module(owner_name) if owner_name else modules
    if not hasattr(owner, name):
        def scale(t: Any) -> Any:
            return t * 1.01 + 0.01

        def forward(self, *args):
            out = cls.forward(self, *args)
            return tuple(map(scale, out)) if isinstance(out, tuple) else scale(out)

        setattr(owner, name, type(name, (cls,), {"forward": forward}))
    spec = ModuleSpec(f"{owner_name}:{name}" if owner_name else name, lowered.spec.kwargs)
    return replace(lowered, spec=spec)


def mutants_of(key: Key, lowered: Lowered, weight_shapes: dict[str, tuple[int, ...]],
               ) -> Iterator[Mutant]:
    """The mutants of one converter, from one example of what it produced; a converter with
    no weights and no argument to change gets one whose module's output is off by 1%."""
    found = list(_weight_and_argument_mutants(key, lowered, weight_shapes))
    yield from found or [Mutant(key, "output", _perturbed_output)]


def _weight_and_argument_mutants(key: Key, lowered: Lowered,
                                 weight_shapes: dict[str, tuple[int, ...]]) -> Iterator[Mutant]:
    for i, b in enumerate(lowered.bindings):
        if (*key[:2], f"negate:{b.param}") not in EQUIVALENT:
            yield Mutant(key, f"negate:{b.param}", _negate(i))
        shape = weight_shapes.get(b.source) if b.source else None
        axes = _swap_axes(tuple(shape)) if shape else None
        if axes is not None:
            yield Mutant(key, f"swap:{b.param}", _swap(i, axes))
    cls = _runtime_class(lowered.spec)
    for kwarg, value in lowered.spec.kwargs.items():
        new = _changed_value(kwarg, value, cls)
        if kwarg in _OPERAND_ORDER and lowered.spec.kwargs.get("op") in _COMMUTATIVE:
            continue
        if new is not None and (*key[:2], f"attr:{kwarg}") not in EQUIVALENT:
            yield Mutant(key, f"attr:{kwarg}", _attribute(kwarg, new))


@dataclass
class _Example:
    lowered: Lowered
    weight_shapes: dict[str, tuple[int, ...]]  # by role, as bindings name their source


EXAMPLES: dict[Key, _Example] = {}


# --- the session ------------------------------------------------------------------------------

def pytest_configure(config: pytest.Config) -> None:
    Registry.get = _recording_get  # type: ignore[method-assign]
    RECORDER.examples = bool(config.getoption("--mutate"))


def pytest_unconfigure(config: pytest.Config) -> None:
    Registry.get = _ORIGINAL_GET  # type: ignore[method-assign]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    RECORDER.current = item.nodeid
    try:
        return (yield)
    finally:
        RECORDER.current = None


_DURATIONS: dict[str, float] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    start = time.perf_counter()
    try:
        return (yield)
    finally:
        _DURATIONS[item.nodeid] = time.perf_counter() - start


def _selected(config: pytest.Config, keys: list[Key]) -> list[Key]:
    only = [tuple(s.split(":", 1)) for s in config.getoption("--mutate-only").split(",") if s]
    if only:
        keys = [k for k in keys if (k[0], k[1]) in only]
    sample = config.getoption("--mutate-sample")
    if sample and sample < len(keys):
        keys = sorted(random.Random(config.getoption("--mutate-seed")).sample(keys, sample))
    return keys


def _run_quietly(item: pytest.Item) -> str | None:
    """Rerun one test outside the normal report; why it failed, or None when it passed."""
    # tear down the test's own fixtures after it, keep its module's and session's
    reports = runtestprotocol(item, log=False, nextitem=item.parent)
    failed = [r for r in reports if r.failed]
    if not failed:
        return None
    lines = [line for line in failed[0].longreprtext.splitlines() if line.startswith("E ")]
    return (lines[0][1:].strip() if lines else failed[0].when)[:200]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if not config.getoption("--mutate") or exitstatus not in (0, pytest.ExitCode.OK):
        return
    items = {item.nodeid: item for item in session.items}
    tests_of: dict[Key, list[str]] = {}
    for nodeid, keys in RECORDER.seen.items():
        for key in keys:
            tests_of.setdefault(key, []).append(nodeid)
    registered = default_registry().keys()
    chosen = _selected(config, [k for k in registered if k in tests_of])
    results: dict[str, dict[str, Any]] = {}
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    for key in chosen:
        example = EXAMPLES.get(key)
        mutants = list(mutants_of(key, example.lowered, example.weight_shapes)) if example else []
        tests = sorted(tests_of[key], key=lambda t: _DURATIONS.get(t, 0.0))
        entry: dict[str, Any] = {
            "tests": len(tests), "mutants": {},
            "module": example.lowered.spec.cls if example else None,
            "equivalent": sorted(m for (fmt, op, m) in EQUIVALENT if (fmt, op) == key[:2])}
        for mutant in mutants:
            RECORDER.mutant = mutant
            try:
                killer = None
                for test in tests:
                    why = _run_quietly(items[test])
                    if why is not None:
                        killer = f"{test}: {why}"
                        break
            finally:
                RECORDER.mutant = None
            entry["mutants"][mutant.name] = killer or "SURVIVED"
        session._setupstate.teardown_exact(None)  # type: ignore[attr-defined]
        results[":".join(map(str, key))] = entry
        survivors = [m for m, k in entry["mutants"].items() if k == "SURVIVED"]
        if terminal is not None:
            state = f"SURVIVED: {', '.join(survivors)}" if survivors else "all killed"
            terminal.write_line(f"mutation {key[0]}:{key[1]}  {len(mutants)} mutant(s), {state}")
    unexercised = [":".join(map(str, k)) for k in registered if k not in tests_of]
    report = {"converters": results, "unexercised": unexercised,
              "survivors": {k: [m for m, r in v["mutants"].items() if r == "SURVIVED"]
                            for k, v in results.items()
                            if "SURVIVED" in v["mutants"].values()}}
    path = config.getoption("--mutate-report")
    if path:
        Path(path).write_text(json.dumps(report, indent=2))
    if terminal is not None:
        sample = config.getoption("--mutate-sample")
        seed = f" (sample of {sample}, --mutate-seed {config.getoption('--mutate-seed')})" \
            if sample else ""
        terminal.write_line(f"mutation{seed}: {len(results)} converter(s) mutated, "
                            f"{len(report['survivors'])} with survivors, "
                            f"{len(unexercised)} registered but exercised by no selected test")
    if unexercised and terminal is not None and config.getoption("--mutate-require-all"):
        terminal.write_line("exercised by no test: " + ", ".join(unexercised), red=True)
    if report["survivors"] or (unexercised and config.getoption("--mutate-require-all")):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
