"""Diagnoses: one line naming a known cause that fits where, and how, a port first diverges.

Each rule looks at the first row above tolerance and its neighbours; the first that fits wins.
"""

from __future__ import annotations

from itertools import pairwise

from tf2torch.verification.layerwise.rows import LayerRow
from tf2torch.verification.layerwise.taps import ACT, BLOCK, BN, CONV, DENSE, DEPTHWISE, FLATTEN, LOGITS

# A BN whose error exceeds its conv's by this factor, at one of the next few BNs after the
# first failure, is the epsilon signature.
_BN_GROWTH = 1.5
_BN_PAIRS = 3


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
    """A wrong epsilon adds error at every BN, one wrong BN only at its own: look at the
    next few BNs after the first failure (farther on, the error carried from before
    outweighs what each BN adds, in both cases)."""
    if rows[i].op != BN:
        return None
    ratios = [_scaled(bn) / max(_scaled(conv), 1e-12)
              for conv, bn in pairwise(rows[i + 1:])
              if conv.op in (CONV, DEPTHWISE) and bn.op == BN][:_BN_PAIRS]
    if ratios and max(ratios) > _BN_GROWTH:
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
