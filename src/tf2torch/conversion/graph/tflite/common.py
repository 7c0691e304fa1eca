"""Helpers shared by the TFLite converters: operands, specs, axes and layouts."""

from __future__ import annotations

from typing import Any

from tf2torch.conversion.graph.lower import to_layout_perm
from tf2torch.conversion.graph.registry import CF, SOURCE, LowerContext, ModuleSpec
from tf2torch.sources.ir import Node

_MODULES = "tf2torch.conversion.graph.tflite.modules:"


def spec(cls: str, **kwargs: Any) -> ModuleSpec:
    """A module of `graph/tflite/modules.py`."""
    return ModuleSpec(_MODULES + cls, kwargs)


def operand(node: Node, pos: int) -> str:
    kinds = node.attrs["operands"]
    return kinds[pos] if pos < len(kinds) else "none"


def value(node: Node, pos: int) -> Any:
    """The literal value of an integer-constant operand."""
    if operand(node, pos) != "v":
        raise ValueError(f"input {pos} must be a constant, is {operand(node, pos)}")
    return node.attrs["values"][str(pos)]


def ints(node: Node, pos: int) -> list[int]:
    v = value(node, pos)
    return [int(x) for x in (v if isinstance(v, list) else [v])]


def output_shape(node: Node, index: int = 0) -> list[int]:
    return list(node.attrs["output_shapes"][index])


def output_dtype(node: Node, index: int = 0) -> str:
    """The output tensor's type as the runtime names it ("int32", "float32", "bool"...)."""
    return str(node.attrs["output_dtypes"][index])


def integer_valued(node: Node, ctx: LowerContext) -> bool:
    """The output holds plain integers (sizes, indices), not a quantized real tensor."""
    return (output_dtype(node) not in ("float32", "float16")
            and node.outputs[0] not in ctx.meta.get("quantization", {}))


def role(node: Node, pos: int) -> str | None:
    """The weight role of a constant float operand, None if it is not one."""
    kind = operand(node, pos)
    return kind[2:] if kind.startswith("w:") else None


def rank(ctx: LowerContext, i: int = 0) -> int:
    return len(ctx.input_shapes[i]) + 1


def common_layout(ctx: LowerContext) -> str:
    """The layout the lowerer gives multi-input elementwise ops (see `_Lowerer.common_layout`)."""
    ranks = {len(s) for s in ctx.input_shapes}
    return CF if len(ranks) == 1 and CF in ctx.input_layouts else SOURCE


def axis_in(axis: int, r: int, layout: str) -> int:
    """A source (channels-last) axis, batch included, as an axis of a tensor in `layout`."""
    axis = axis % r
    if layout != CF or r < 3:
        return axis
    return to_layout_perm(r, CF).index(axis)


def static_dim(ctx: LowerContext, axis: int, i: int = 0) -> int:
    size = ctx.input_shapes[i][axis - 1] if axis > 0 else None
    if size is None:
        raise ValueError(f"axis {axis} has no static size")
    return int(size)
