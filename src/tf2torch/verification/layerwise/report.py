"""The per-layer report: figures per tap in execution order, a diagnosis, table, JSON, plot."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np

from tf2torch.util.table import text_table
from tf2torch.verification.layerwise.taps import ACT, BLOCK, BN, CONV, DENSE, DEPTHWISE, FLATTEN, LOGITS

# A BN whose error exceeds its conv's by this factor, at most BNs, is the epsilon signature.
_BN_GROWTH = 1.5


@dataclass(frozen=True)
class LayerRow:
    """One tap compared over every input case (figures are the worst case's)."""

    net: str
    ref: str
    op: str
    stride: int
    shape: tuple[int, ...]            # one sample (batch axis dropped)
    max_abs: float
    max_rel: float
    bound: float
    same_values: bool = False         # equal as multisets: only the order differs
    shift: int = 0                    # logits match when rolled by this many classes
    note: str = ""

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.max_abs)) and self.max_abs <= self.bound


@dataclass
class LayerReport:
    """Every tap both sides share, in execution order, and what the first failure suggests."""

    reference: str
    rows: list[LayerRow] = field(default_factory=list)
    unpaired: list[str] = field(default_factory=list)   # taps the reference cannot expose

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r.passed for r in self.rows)

    @property
    def first_failure(self) -> LayerRow | None:
        return next((r for r in self.rows if not r.passed), None)

    @property
    def diagnosis(self) -> str | None:
        return diagnose(self.rows)

    def to_dict(self) -> dict:
        first = self.first_failure
        return {
            "reference": self.reference, "passed": self.passed,
            "first_failure": first and {"net": first.net, "ref": first.ref},
            "diagnosis": self.diagnosis, "unpaired": self.unpaired,
            "layers": [{**asdict(r), "shape": list(r.shape), "passed": r.passed}
                       for r in self.rows],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def table(self) -> str:
        return render_table(self)

    def plot(self, path: str | Path, title: str | None = None) -> Path:
        from tf2torch.verification.layerwise.plot import plot_report

        return plot_report(self, Path(path), title)


# --- diagnosis -------------------------------------------------------------------------

def diagnose(rows: list[LayerRow]) -> str | None:
    """One line naming a known cause that fits where (and how) the error first appears."""
    index = next((i for i, r in enumerate(rows) if not r.passed), None)
    if index is None:
        return None
    first = rows[index]
    where = f"first above tolerance at {first.net or '<output>'} ↔ {first.ref}"
    for rule in (_background_class, _element_order, _padding, _epsilon, _own_weights):
        cause = rule(rows, index)
        if cause:
            return f"{cause} ({where})"
    return f"error starts at this layer ({where})"


def _background_class(rows: list[LayerRow], i: int) -> str | None:
    first = rows[i]
    if first.shift:  # the logits, or the classifier conv computing them
        return (f"logits shifted by {first.shift:+d} class: background class mismatch "
                "(slim has 1001 outputs with 0 = background, Keras 1000)")
    if first.op == LOGITS and first.note.startswith("shape"):
        return f"{first.note}: background class? (1001 with background vs 1000)"
    return None


def _element_order(rows: list[LayerRow], i: int) -> str | None:
    first = rows[i]
    if first.op in (FLATTEN, DENSE) or first.same_values:
        return ("element order: flattening NCHW instead of NHWC (restore NHWC order before "
                "Flatten/Reshape, or permute the next Dense's weights)")
    return None


def _padding(rows: list[LayerRow], i: int) -> str | None:
    first = rows[i]
    if first.op in (CONV, DEPTHWISE) and first.stride > 1:
        return ("SAME padding: TF pads the extra row/column bottom/right at stride 2 "
                "(pad (0, 1), not symmetric (1, 1))")
    return None


def _epsilon(rows: list[LayerRow], i: int) -> str | None:
    if rows[i].op != BN:
        return None
    ratios = [_scaled(bn) / max(_scaled(conv), 1e-12)
              for conv, bn in pairwise(rows)
              if conv.op in (CONV, DEPTHWISE) and bn.op == BN]
    if ratios and np.median(ratios) > _BN_GROWTH:
        return ("BatchNorm epsilon: the error grows at every BN (TF/Keras/slim use 1e-3, "
                "PyTorch defaults to 1e-5)")
    return "this BatchNorm's statistics or scale/offset (gamma, beta, mean, variance mapping)"


def _scaled(row: LayerRow) -> float:
    return row.max_abs / row.bound if row.bound > 0 else row.max_abs


def _own_weights(rows: list[LayerRow], i: int) -> str | None:
    if rows[i].op in (CONV, DEPTHWISE, ACT, BLOCK):
        return ("this layer's own weights: its inputs agree and its output does not "
                "(kernel layout, e.g. H and W swapped?)")
    return None


# --- table -----------------------------------------------------------------------------

def render_table(report: LayerReport) -> str:
    first = report.first_failure
    head = ("#", "pytorch", "reference", "op", "shape", "max abs", "max rel", "bound", "")
    rows = [(str(n), r.net or "<output>", r.ref, r.op, "×".join(map(str, r.shape)),
             f"{r.max_abs:.2e}", f"{r.max_rel:.2e}", f"{r.bound:.0e}",
             ">> FIRST FAIL" if r is first else ("ok" if r.passed else "FAIL"))
            for n, r in enumerate(report.rows)]
    lines = [f"reference: {report.reference}", *text_table(head, rows)]
    if report.unpaired:
        lines.append(f"not exposed by the reference: {len(report.unpaired)} tap(s)")
    passed = sum(r.passed for r in report.rows)
    lines.append(f"verdict: {'PASS' if report.passed else 'FAIL'} "
                 f"({passed}/{len(report.rows)} layers within tolerance)")
    if report.diagnosis:
        lines.append(f"diagnosis: {report.diagnosis}")
    return "\n".join(lines)
