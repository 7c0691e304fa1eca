"""Compare a converted model with its original on the same inputs.

Knows neither PyTorch nor TensorFlow: it runs two callables (NHWC float32 batch → named
outputs) on the same inputs and measures how far apart their outputs are.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date

import numpy as np

from tf2torch.util.progress import progress
from tf2torch.util.table import text_table

RunFn = Callable[[np.ndarray], Mapping[str, np.ndarray]]

# Denominator floor of the relative difference, as in max(|net − ref| / max(|net|, 1e-8)).
_REL_FLOOR = 1e-8


# The rules a bound follows, and the status an output within it gets.
FLOAT, STEP, QUANTIZATION = "float", "step", "quantization"
STATUS = {FLOAT: "match", STEP: "within-one-step", QUANTIZATION: "within-quantization-error"}


@dataclass(frozen=True)
class Tolerance:
    """Largest acceptable max |net − ref| for one output, and the rule it comes from.

    With `relative_to_magnitude`, the bound is `atol · max(magnitude_floor, max |ref|)`, the
    rule used for graph-converted models whose outputs have no fixed scale; never below
    `minimum`. Rules: FLOAT (a port computing what the original computes, up to float32
    rounding), STEP (a simulation of integer arithmetic: `atol` is one quantization step of
    the output), QUANTIZATION (a float port of a quantized model: the error quantization
    itself makes, measured on the corpus, see docs/tflite_compatibility.md).
    """

    atol: float
    relative_to_magnitude: bool = False
    rule: str = FLOAT
    magnitude_floor: float = 1.0
    minimum: float = 0.0

    def bound(self, reference: np.ndarray) -> float:
        if not self.relative_to_magnitude:
            return max(self.atol, self.minimum)
        magnitude = float(np.max(np.abs(reference), initial=0.0))
        return max(self.atol * max(self.magnitude_floor, magnitude), self.minimum)


# The foundation issue's defaults for classifiers: 1e-5 on probabilities, 1e-4 on logits.
CLASSIFIER_TOLERANCES: dict[str, Tolerance] = {
    "logits": Tolerance(1e-4),
    "probabilities": Tolerance(1e-5),
}
GRAPH_TOLERANCE = Tolerance(1e-4, relative_to_magnitude=True)


@dataclass(frozen=True)
class Comparison:
    """One output on one input case."""

    case: str
    output: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    bound: float
    top1_agreement: float | None = None
    top5_agreement: float | None = None
    # How far the original's own runtimes disagree on this input (TFLite: XNNPACK, builtin
    # and reference kernels); measured only where the bound is exceeded.
    reference_spread: float | None = None
    rule: str = FLOAT  # the Tolerance rule the bound follows
    against: str = ""  # a second form of the reference ("dequantized twin"); "" = the file

    @property
    def status(self) -> str:
        """match / within-one-step / within-quantization-error / within-runtime-spread /
        fail: what a user may conclude (exact port, integer simulation, float port of a
        quantized model, ill-conditioned original)."""
        if self.within_bound:
            return STATUS[self.rule]
        return "within-runtime-spread" if self.within_spread else "fail"

    @property
    def within_bound(self) -> bool:
        return bool(np.isfinite(self.max_abs)) and self.max_abs <= self.bound

    @property
    def within_spread(self) -> bool:
        """Above the bound, but no farther from the reference than its runtimes are apart."""
        return (not self.within_bound and self.reference_spread is not None
                and bool(np.isfinite(self.max_abs)) and self.max_abs <= self.reference_spread)

    @property
    def passed(self) -> bool:
        return self.within_bound or self.within_spread


def compare_arrays(
    case: str, output: str, net: np.ndarray, ref: np.ndarray, tolerance: Tolerance,
    classes_axis: int | None = None,
) -> Comparison:
    """Measure `net` against `ref`; top-k agreement when `classes_axis` names a class axis.
    Integer and boolean outputs (indices, masks, counts) must also keep the original's dtype:
    an int32 index returned as int64, or a mask as floats, is a different model."""
    exact = {_exact_dtype(net), _exact_dtype(ref)}
    if len(exact) > 1:
        raise ValueError(f"{case}/{output}: dtypes differ, net {np.asarray(net).dtype} vs "
                         f"reference {np.asarray(ref).dtype}")
    net = np.asarray(net, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if net.shape != ref.shape:
        raise ValueError(f"{case}/{output}: shapes differ, net {net.shape} vs reference {ref.shape}")
    diff = np.abs(net - ref)
    max_abs = float(diff.max(initial=0.0))
    max_rel = float((diff / np.maximum(np.abs(net), _REL_FLOOR)).max(initial=0.0))
    top1 = top5 = None
    if classes_axis is not None and net.ndim >= 1 and net.shape[classes_axis] >= 5:
        top1 = _topk_agreement(net, ref, 1, classes_axis)
        top5 = _topk_agreement(net, ref, 5, classes_axis)
    return Comparison(case, output, tuple(net.shape), max_abs, max_rel, tolerance.bound(ref),
                      top1, top5, rule=tolerance.rule)


def _exact_dtype(values: np.ndarray) -> str:
    """The dtype an output must keep: its own if integer or boolean; any float otherwise."""
    dtype = np.asarray(values).dtype
    return "float" if np.issubdtype(dtype, np.floating) else str(dtype)


def _topk_agreement(net: np.ndarray, ref: np.ndarray, k: int, axis: int) -> float:
    """Fraction of rows whose top-k class sets are equal (order-insensitive)."""
    net_k = np.sort(np.argsort(-net, axis=axis, kind="stable").take(range(k), axis=axis), axis=axis)
    ref_k = np.sort(np.argsort(-ref, axis=axis, kind="stable").take(range(k), axis=axis), axis=axis)
    same = np.all(net_k == ref_k, axis=axis)
    return float(np.mean(same))


@dataclass
class VerificationReport:
    """All comparisons of one verification run, printable as a table or JSON."""

    reference: str
    comparisons: list[Comparison] = field(default_factory=list)
    date: str = field(default_factory=lambda: date.today().isoformat())

    @property
    def passed(self) -> bool:
        return bool(self.comparisons) and all(c.passed for c in self.comparisons)

    def case_names(self) -> list[str]:
        """The input cases, in the order they ran."""
        return list(dict.fromkeys(c.case for c in self.comparisons))

    def worst(self, output: str) -> float:
        return max((c.max_abs for c in self.comparisons if c.output == output), default=0.0)

    @property
    def status(self) -> str:
        """The weakest status among the comparisons against the file itself."""
        order = ["fail", "within-runtime-spread", "within-quantization-error",
                 "within-one-step", "match"]
        found = [c.status for c in self.comparisons if not c.against] or ["fail"]
        return min(found, key=order.index)

    def to_dict(self) -> dict:
        rows = []
        for c in self.comparisons:
            row = asdict(c)
            row["passed"] = c.passed
            row["within_spread"] = c.within_spread
            row["status"] = c.status
            rows.append(row)
        return {"reference": self.reference, "date": self.date, "passed": self.passed,
                "status": self.status, "comparisons": rows}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def table(self) -> str:
        head = ("input", "output", "shape", "max abs diff", "max rel diff", "bound", "top-1",
                "top-5", "")
        rows = [(
            c.case + (f" [{c.against}]" if c.against else ""), c.output,
            "×".join(map(str, c.shape)), f"{c.max_abs:.3e}", f"{c.max_rel:.3e}",
            f"{c.bound:.1e}", _pct(c.top1_agreement), _pct(c.top5_agreement), _label(c),
        ) for c in self.comparisons]
        shown = {c.status for c in self.comparisons} | {
            "twin" for c in self.comparisons if c.against}
        notes = [note for key, note in _NOTES.items() if key in shown]
        verdict = "PASS" if self.passed else "FAIL"
        if self.passed and self.status != "match":
            verdict += f" ({self.status.replace('-', ' ')})"
        return "\n".join([f"reference: {self.reference}", *text_table(head, rows), *notes,
                          f"verdict: {verdict}"])


_LABELS = {"match": "ok", "within-one-step": "ok (≤1 step)",
           "within-quantization-error": "ok~ (quant.)"}
_NOTES = {
    "within-runtime-spread": "ok*: above the bound, but within the spread of the original's "
                             "own runtimes on that input (they disagree with each other as much)",
    "within-one-step": "ok (≤1 step): the integer simulation is within one quantization step "
                       "of the interpreter (the bound is that step)",
    "within-quantization-error": "ok~: a float port of a quantized file, within the error "
                                 "quantization itself makes (bound: docs/tflite_compatibility.md)",
    "twin": "[dequantized twin]: the same file with its weights dequantized and run by TFLite "
            "in float — the float port must match it as exactly as a float model",
}


def _label(c: Comparison) -> str:
    if c.within_bound:
        return _LABELS[c.status]
    if c.within_spread:
        return f"ok* (spread {c.reference_spread:.1e})"
    return "FAIL" if c.reference_spread is None else f"FAIL (spread {c.reference_spread:.1e})"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def standard_inputs(
    shape_nhwc: tuple[int, ...], seed: int = 0, batch: int = 2, low: float = -1.0,
    high: float = 1.0,
) -> dict[str, np.ndarray]:
    """The two synthetic cases every run includes: all zeros (one image) and a seeded batch."""
    rng = np.random.default_rng(seed)
    return {
        "zeros": np.zeros((1, *shape_nhwc), np.float32),
        "random": rng.uniform(low, high, size=(batch, *shape_nhwc)).astype(np.float32),
    }


def compare_runs(
    run_net: RunFn, run_ref: RunFn, inputs: Mapping[str, np.ndarray],
    tolerances: Mapping[str, Tolerance], reference: str, classes_axis: int | None = -1,
) -> VerificationReport:
    """Run both sides on every input case and compare every output the reference gives.

    `tolerances` maps output names to bounds; `"*"` is the fallback for unnamed outputs.
    Classification metrics (top-k) are reported for outputs named logits/probabilities.
    """
    report = VerificationReport(reference)
    for case, batch in progress(inputs.items(), "verifying", total=len(inputs)):
        ref_out = run_ref(batch)
        net_out = run_net(batch)
        for name, ref in ref_out.items():
            if name not in net_out:
                raise ValueError(f"converted model gives no output {name!r}")
            tol = tolerances.get(name) or tolerances["*"]
            axis = classes_axis if name in ("logits", "probabilities") else None
            report.comparisons.append(compare_arrays(case, name, net_out[name], ref, tol, axis))
    return report
