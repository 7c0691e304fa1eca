"""The per-layer report: figures per tap in execution order, a diagnosis, table, JSON, plot."""

from __future__ import annotations

import json
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tf2torch.util.table import text_table
from tf2torch.verification.layerwise.diagnosis import diagnose
from tf2torch.verification.layerwise.plot import plot_rows
from tf2torch.verification.layerwise.rows import LayerRow

__all__ = ["LayerReport", "LayerRow", "diagnose"]


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
        """A PNG of the error per layer on a log scale (needs matplotlib)."""
        verdict = "PASS" if self.passed else "FAIL"
        heading = title or f"per-layer error vs {self.reference}: {verdict}"
        if self.diagnosis:
            heading += "\n" + textwrap.fill(f"diagnosis: {self.diagnosis}", 130)
        return plot_rows(self.rows, Path(path), heading)


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
