"""A picture of per-layer rows: error per layer on a log scale, tolerance, first failure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tf2torch.verification.layerwise.rows import LayerRow

_FLOOR_BELOW_BOUND = 1e-4  # lowest decade shown, relative to the tolerance
_MAX_LABELS = 40


def plot_rows(rows: Sequence[LayerRow], path: Path, heading: str) -> Path:
    """Write a PNG: max abs diff and its bound per layer; failures red, the first one marked."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    rows = list(rows)
    x = np.arange(len(rows))
    bound = np.array([r.bound for r in rows])
    floor = float(bound.min(initial=1.0)) * _FLOOR_BELOW_BOUND  # exact agreement sits here
    err = np.array([max(r.max_abs, floor) if np.isfinite(r.max_abs) else np.nan for r in rows])
    ok = np.array([r.passed for r in rows])
    fig, ax = plt.subplots(figsize=(min(16.0, 0.1 * len(rows) + 6), 6.5), layout="constrained")
    ax.plot(x, err, color="0.6", lw=1, zorder=1)
    ax.scatter(x[ok], err[ok], s=14, color="tab:green", label="within tolerance", zorder=2)
    ax.scatter(x[~ok], err[~ok], s=18, color="tab:red", label="above tolerance", zorder=2)
    ax.step(x, bound, where="mid", color="black", ls="--", lw=1, label="tolerance")
    ax.set_yscale("log")
    ax.set_ylim(bottom=floor / 2)
    ax.set_ylabel("max |PyTorch − reference|")
    ax.set_xlabel("layer, in execution order")
    _label_axis(ax, rows)
    first = next((r for r in rows if not r.passed), None)
    if first is not None:
        i = rows.index(first)
        ax.axvline(i, color="tab:red", lw=1.5, alpha=0.6)
        ax.annotate(f"first failure: {first.net or '<output>'}", (i, err[i]),
                    xytext=(15, -30), textcoords="offset points", color="tab:red",
                    fontsize=10, weight="bold",
                    arrowprops={"arrowstyle": "->", "color": "tab:red"})
    ax.set_title(heading, fontsize=10, loc="left")
    ax.legend(loc="lower right", fontsize=9, framealpha=0.9)
    ax.grid(True, which="major", axis="y", alpha=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _label_axis(ax, rows) -> None:
    """Tick every layer when few, else every k-th plus the first failure."""
    step = max(1, int(np.ceil(len(rows) / _MAX_LABELS)))
    ticks = list(range(0, len(rows), step))
    first = next((i for i, r in enumerate(rows) if not r.passed), None)
    if first is not None and first not in ticks:
        ticks = sorted({*ticks, first} - {t for t in ticks if abs(t - first) < step / 2})
    ax.set_xticks(ticks)
    ax.set_xticklabels([rows[i].net or "<output>" for i in ticks], rotation=70, ha="right",
                       fontsize=7)
    for i, label in zip(ticks, ax.get_xticklabels(), strict=True):
        if not rows[i].passed and i == first:
            label.set_color("tab:red")
            label.set_fontweight("bold")
