"""Helpers shared by the TensorFlow converters: operands, module specs, axes and layouts.

A node's inputs are described position by position in `attrs["operands"]` (see
`sources/tensorflow/graph.py`): "in:k" computed, "w:ROLE" a stored weight, "v" a value.
"""

from __future__ import annotations

from typing import Any

from tf2torch.conversion.graph.lower import to_layout_perm
from tf2torch.conversion.graph.registry import CF, SOURCE, LowerContext, ModuleSpec
from tf2torch.sources.ir import Node

_TF = "tf2torch.conversion.graph.tensorflow.modules:"
_TFLITE = "tf2torch.conversion.graph.tflite.modules:"


def tf_spec(cls: str, **kwargs: Any) -> ModuleSpec:
    """A module of `graph/tensorflow/modules`."""
    return ModuleSpec(_TF + cls, kwargs)


def tflite_spec(cls: str, **kwargs: Any) -> ModuleSpec:
    """A module of the TFLite runtime, whose ops have TF's semantics (TFLite's are TF's)."""
    return ModuleSpec(_TFLITE + cls, kwargs)


def operand(node: Node, pos: int) -> str:
    kinds = node.attrs["operands"]
    return kinds[pos] if pos < len(kinds) else "none"


def is_value(node: Node, pos: int) -> bool:
    return operand(node, pos) == "v"


def value(node: Node, pos: int) -> Any:
    """The literal value of a constant operand (shapes, axes, scalars)."""
    if operand(node, pos) != "v":
        raise ValueError(f"input {pos} must be a constant, is {_kind(node, pos)}")
    return node.attrs["values"][str(pos)]


def _kind(node: Node, pos: int) -> str:
    kind = operand(node, pos)
    return {"v": "a constant"}.get(kind, "computed at run time" if kind.startswith("in:")
                                   else "a stored tensor")


def ints(node: Node, pos: int) -> list[int]:
    """An integer operand as a list; refuses sizes known only at run time."""
    v = value(node, pos)
    items = v if isinstance(v, list) else [v]
    flat = _flatten(items)
    if any(x is None for x in flat):
        raise ValueError(f"input {pos} depends on the batch size ({flat})")
    return [int(x) for x in flat]


def scalar(node: Node, pos: int) -> float:
    v = value(node, pos)
    flat = _flatten(v if isinstance(v, list) else [v])
    if len(flat) != 1:
        raise ValueError(f"input {pos} must be a scalar, has {len(flat)} values")
    return float(flat[0])


def _flatten(items: list) -> list:
    out: list = []
    for item in items:
        out.extend(_flatten(item) if isinstance(item, list) else [item])
    return out


def role(node: Node, pos: int) -> str | None:
    """The weight role of a stored operand, None if it is not one."""
    kind = operand(node, pos)
    return kind[2:] if kind.startswith("w:") else None


def weight(node: Node, pos: int, what: str = "input") -> str:
    name = role(node, pos)
    if name is None:
        raise ValueError(f"the {what} (input {pos}) must be a stored tensor, is "
                         f"{_kind(node, pos)}")
    return name


def rank(ctx: LowerContext, i: int = 0) -> int:
    return len(ctx.input_shapes[i]) + 1


def channels_first(node: Node) -> bool:
    return str(node.attrs.get("data_format", "NHWC")).startswith("NC")


def axis_in(axis: int, r: int, layout: str) -> int:
    """A source axis (batch included) as an axis of a tensor in `layout`."""
    axis = axis % r
    if layout != CF or r < 3:
        return axis
    return to_layout_perm(r, CF).index(axis)


def follow_layout(ctx: LowerContext) -> str:
    """The layout of the (first) input: element-wise ops compute where their input is."""
    return ctx.input_layouts[0] if ctx.input_layouts else SOURCE


def output_shape(node: Node, index: int = 0) -> list | None:
    return node.attrs["output_shapes"][index]


def const_view(shape: tuple, r: int, layout: str) -> tuple | None:
    """How a stored operand of `shape` broadcasts against a rank-`r` input in `layout`."""
    if layout == CF and r >= 3 and len(shape) <= r:
        return ((1,) * (r - len(shape)) + tuple(shape), to_layout_perm(r, CF))
    return None
