"""One row of a per-layer comparison: a tap's worst figures over every input case."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
