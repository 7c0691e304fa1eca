"""Channel gates folded into the 1×1 layer they feed, in the single-image program.

A squeeze-and-excitation block (EfficientNet, MobileNetV3) ends by multiplying its
activation by one computed weight per channel, and a 1×1 layer (a matmul here,
`pointwise.py`) reads the product. Compiled as written, the product is one more pass over
the activation: read, multiply, write, before the matmul reads it again. The same numbers
come from scaling the matmul's weight rows instead — (x · s) W = x (s · W) — which costs
C_in·C_out multiplies against C_in·H·W, so a gate is folded only where the weight is the
smaller (C_out ≤ H·W): on Keras' EfficientNetB0 at 224×224, 11 of its 16 gates, the ones
on large maps; 2-3% faster at batch 1, one process per variant (BENCHMARKS.md).

Works on the exported single-image program's aten graph (after `pointwise.py` and
`mirror.py`): a `mul` of a (1, C, H, W) activation by a (1, C, 1, 1) gate whose only reader
is the matmul's channels-last view, `permute(0, 2, 3, 1)` then `reshape(1, H·W, C)`, of a
constant (1, C, C_out) weight.
"""

from __future__ import annotations

import operator

import torch
from torch import fx

from tf2torch.packages.reversal import only_user, shape_or_none

aten = torch.ops.aten
_VIEWS = (aten.reshape.default, aten.view.default)


def _gated(mul: fx.Node) -> tuple[fx.Node, fx.Node] | None:
    """(activation, gate) where `mul` multiplies a (1, C, H, W) activation (H·W > 1) by a
    (1, C, 1, 1) gate, in either order; else None."""
    if mul.op != "call_function" or mul.target is not aten.mul.Tensor or len(mul.args) != 2:
        return None
    for x, s in (mul.args, mul.args[::-1]):
        xs, ss = shape_or_none(x), shape_or_none(s)
        if (xs is not None and ss is not None and len(xs) == 4 and xs[0] == 1
                and ss == (1, xs[1], 1, 1) and xs[2] * xs[3] > 1):
            return x, s
    return None


def _fold(gm: fx.GraphModule, matmul: fx.Node) -> bool:
    """Fold the gate in front of `matmul` (a `bmm` of pixels by a constant weight) into
    that weight, if the pattern is there and the weight is the smaller operand."""
    weight, rows = matmul.args[1], matmul.args[0]
    if (not isinstance(weight, fx.Node) or weight.op != "get_attr"
            or not isinstance(rows, fx.Node) or rows.target not in _VIEWS
            or only_user(rows) is not matmul):
        return False
    permute = rows.args[0]
    if (not isinstance(permute, fx.Node) or permute.target is not aten.permute.default
            or list(permute.args[1]) != [0, 2, 3, 1] or only_user(permute) is not rows):
        return False
    mul = permute.args[0]
    gated = _gated(mul) if isinstance(mul, fx.Node) else None
    if gated is None or only_user(mul) is not permute:
        return False
    x, gate = gated
    _, channels, height, width = shape_or_none(x)
    kept = operator.attrgetter(weight.target)(gm)
    if kept.dim() != 3 or tuple(kept.shape[:2]) != (1, channels) \
            or kept.shape[2] > height * width:
        return False
    with gm.graph.inserting_before(matmul):
        column = gm.graph.call_function(aten.reshape.default, (gate, [1, channels, 1]))
        scaled = gm.graph.call_function(aten.mul.Tensor, (weight, column))
    matmul.replace_input_with(weight, scaled)
    permute.replace_input_with(mul, x)
    gm.graph.erase_node(mul)
    return True


def gates_into_weights(gm: fx.GraphModule) -> int:
    """Fold, in place, every channel gate that only a 1×1 matmul reads (and whose weight
    is smaller than the activation) into that matmul's weight; returns how many."""
    matmuls = [n for n in gm.graph.nodes
               if n.op == "call_function" and n.target is aten.bmm.default]
    count = sum(_fold(gm, matmul) for matmul in matmuls)
    if count:
        gm.graph.lint()
        gm.recompile()
    return count
