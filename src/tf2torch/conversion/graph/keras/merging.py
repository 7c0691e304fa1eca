"""Merge layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot)."""

from __future__ import annotations

from tf2torch.conversion.graph.keras.common import axis_in_layout, source_axis
from tf2torch.conversion.graph.registry import ANY, CF, SOURCE, LowerContext, Lowered, ModuleSpec
from tf2torch.errors import UnsupportedError
from tf2torch.sources.ir import Node


def _merge(op: str):
    def convert(node: Node, ctx: LowerContext) -> Lowered:
        return Lowered(ModuleSpec("Merge", {"op": op}), ANY)

    convert.__name__ = convert.__qualname__ = f"convert_{op}"
    return convert


convert_add = _merge("add")
convert_subtract = _merge("subtract")
convert_multiply = _merge("multiply")
convert_average = _merge("average")
convert_maximum = _merge("maximum")
convert_minimum = _merge("minimum")


def convert_concatenate(node: Node, ctx: LowerContext) -> Lowered:
    """Concatenate on any axis; channel concatenation stays channels-first."""
    rank = ctx.rank
    axis = source_axis(int(node.attrs.get("axis", -1)), rank)
    same_rank = all(len(s) + 1 == rank for s in ctx.input_shapes)
    layout = CF if same_rank and rank >= 3 and axis == rank - 1 else SOURCE
    if layout == SOURCE and rank >= 3 and any(lay == CF for lay in ctx.input_layouts):
        layout = CF  # any axis maps into CF; avoids permuting every input back
    return Lowered(ModuleSpec("Concat", {"axis": axis_in_layout(axis, rank, layout)}), layout)


def convert_dot(node: Node, ctx: LowerContext) -> Lowered:
    """Dot of two rank-2 or rank-3 inputs over one axis each."""
    axes = node.attrs.get("axes", -1)
    axes = list(axes) if isinstance(axes, list | tuple) else [axes, axes]
    ranks = [len(s) + 1 for s in ctx.input_shapes]
    if len(ranks) != 2 or any(r not in (2, 3) for r in ranks) or ranks[0] != ranks[1]:
        raise UnsupportedError(f"{node.name}: Dot is supported on two rank-2 or rank-3 inputs")
    axes = tuple(source_axis(int(a), r) for a, r in zip(axes, ranks, strict=True))
    spec = ModuleSpec("Dot", {"axes": axes, "normalize": bool(node.attrs.get("normalize"))})
    return Lowered(spec, SOURCE)
