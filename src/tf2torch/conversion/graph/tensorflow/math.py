"""Converters of TF's element-wise ops, casts, selection and reductions."""

from __future__ import annotations

from tf2torch.conversion.graph.registry import ANY, CF, SOURCE, Binding, LowerContext, Lowered
from tf2torch.conversion.graph.tensorflow.common import (
    axis_in,
    const_view,
    follow_layout,
    ints,
    operand,
    rank,
    role,
    scalar,
    tf_spec,
    tflite_spec,
    value,
)
from tf2torch.sources.ir import Node

_UNARY = {
    "Relu": "relu", "Relu6": "relu6", "Elu": "elu", "Selu": "selu", "Sigmoid": "sigmoid",
    "Tanh": "tanh", "Softplus": "softplus", "Softsign": "softsign", "Erf": "erf",
    "Erfc": "erfc", "Exp": "exp", "Expm1": "expm1", "Log": "log", "Log1p": "log1p",
    "Neg": "neg", "Abs": "abs", "Sqrt": "sqrt", "Rsqrt": "rsqrt", "Square": "square",
    "Reciprocal": "reciprocal", "Inv": "reciprocal", "Floor": "floor", "Ceil": "ceil",
    "Round": "round", "Rint": "round", "Sign": "sign", "Sin": "sin", "Cos": "cos",
    "Tan": "tan", "Atan": "atan", "LogicalNot": "logical_not", "IsNan": "is_nan",
    "IsInf": "is_inf", "IsFinite": "is_finite", "ZerosLike": "zeros_like",
    "OnesLike": "ones_like",
}
_BINARY = {
    "Add": "add", "AddV2": "add", "Sub": "sub", "Mul": "mul", "RealDiv": "div",
    "Div": "div", "FloorDiv": "floor_div", "TruncateDiv": "trunc_div", "FloorMod": "floor_mod",
    "DivNoNan": "div_no_nan", "Maximum": "maximum", "Minimum": "minimum", "Pow": "pow",
    "SquaredDifference": "squared_difference", "Equal": "equal", "NotEqual": "not_equal",
    "Less": "less", "LessEqual": "less_equal", "Greater": "greater",
    "GreaterEqual": "greater_equal", "LogicalAnd": "logical_and", "LogicalOr": "logical_or",
}


def _unary(fn: str):
    def convert(node: Node, ctx: LowerContext) -> Lowered:
        return Lowered(tf_spec("Unary", fn=fn), ANY)

    convert.__name__ = f"convert_{fn}"
    return convert


def convert_leaky_relu(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(tf_spec("Unary", fn="leaky_relu", alpha=float(node.attrs.get("alpha", 0.2))),
                   ANY)


def _binary(op: str):
    def convert(node: Node, ctx: LowerContext) -> Lowered:
        kinds = node.attrs["operands"]
        computed = [i for i, k in enumerate(kinds) if k.startswith("in:")]
        if len(computed) == 2:
            return Lowered(tf_spec("Binary", op=op), ANY)
        if len(computed) != 1:
            raise ValueError("both operands are constants")
        other = 1 - computed[0]
        layout = follow_layout(ctx)
        stored = role(node, other)
        if stored is None and _size(value(node, other)) == 1:
            return Lowered(tf_spec("Binary", op=op, scalar=scalar(node, other),
                                   const_first=other == 0, same_shape=True), ANY)
        if stored is None:  # a small integer array: literal, as a constant buffer
            data = value(node, other)
            shape = tuple(node.attrs["input_shapes"][other])
            binding = Binding("constant", value=data)
        else:
            shape = tuple(ctx.weight_shape(stored))
            binding = Binding("constant", stored)
        view = const_view(shape, rank(ctx), layout)
        if layout == CF and view is None:
            layout = SOURCE
        module = tf_spec("Binary", op=op, const_shape=shape, const_first=other == 0,
                         const_view=view, same_shape=_fits(shape, ctx.input_shapes[0]))
        return Lowered(module, layout, (binding,))

    convert.__name__ = f"convert_{op}"
    return convert


def _fits(const: tuple, shape: tuple) -> bool:
    """Whether a constant of shape `const` broadcasts into the input (batch excluded)
    without growing it."""
    full = (1, *shape)
    if len(const) > len(full):
        return False
    return all(d == 1 or d == full[len(full) - len(const) + i] for i, d in enumerate(const))


def _size(v) -> int:
    if not isinstance(v, list):
        return 1
    return sum(_size(x) for x in v)


def convert_add_n(node: Node, ctx: LowerContext) -> Lowered:
    if any(not k.startswith("in:") for k in node.attrs["operands"]):
        raise ValueError("AddN of stored tensors is not converted")
    return Lowered(tf_spec("AddN"), ANY)


def convert_cast(node: Node, ctx: LowerContext) -> Lowered:
    source, target = node.attrs["input_dtypes"][0], node.attrs["output_dtypes"][0]
    if source == target:
        return Lowered(tflite_spec("Identity"), ANY)
    return Lowered(tf_spec("Cast", dtype=target), ANY)


def convert_select(node: Node, ctx: LowerContext) -> Lowered:
    if operand(node, 0) == "v":
        raise ValueError("a constant condition is not converted")
    scalars = []
    for pos in (1, 2):
        if operand(node, pos).startswith("in:"):
            scalars.append(None)
        elif operand(node, pos) == "v":
            scalars.append(scalar(node, pos))
        else:
            raise ValueError(f"stored tensor as input {pos} is not converted")
    rows = node.op == "Select" and len(node.attrs["input_shapes"][0] or []) == 1
    return Lowered(tf_spec("Select", scalars=tuple(scalars), rows=rows), SOURCE)


def convert_clip(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(tf_spec("Clip", low=scalar(node, 1), high=scalar(node, 2)), ANY)


def _reduce(kind: str):
    def convert(node: Node, ctx: LowerContext) -> Lowered:
        r, layout = rank(ctx), follow_layout(ctx)
        axes = sorted({a % r for a in ints(node, 1)})
        keep = bool(node.attrs.get("keep_dims", False))
        if layout == CF and not keep and r - len(axes) >= 3:
            layout = SOURCE  # the result's axes would not be in channels-first order
        axes = sorted(axis_in(a, r, layout) for a in axes)
        return Lowered(tflite_spec("Reduce", kind=kind, axes=tuple(axes), keepdims=keep), layout)

    convert.__name__ = f"convert_reduce_{kind}"
    return convert


def convert_arg_max(node: Node, ctx: LowerContext) -> Lowered:
    axis = ints(node, 1)[0] % rank(ctx)
    return Lowered(tf_spec("ArgMax", axis=axis, smallest=node.op == "ArgMin",
                           int64=node.attrs.get("output_type", 9) == 9), SOURCE)


def convert_top_k(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(tf_spec("TopK", k=ints(node, 1)[0]), SOURCE)


CONVERTERS = {
    **{op: _unary(fn) for op, fn in _UNARY.items()},
    **{op: _binary(fn) for op, fn in _BINARY.items()},
    "LeakyRelu": convert_leaky_relu,
    "AddN": convert_add_n,
    "Cast": convert_cast,
    "Select": convert_select,
    "SelectV2": convert_select,
    "ClipByValue": convert_clip,
    "Mean": _reduce("mean"),
    "Sum": _reduce("sum"),
    "Max": _reduce("max"),
    "Min": _reduce("min"),
    "Prod": _reduce("prod"),
    "ArgMax": convert_arg_max,
    "ArgMin": convert_arg_max,
    "TopKV2": convert_top_k,
}
