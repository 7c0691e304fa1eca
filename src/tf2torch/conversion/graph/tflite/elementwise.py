"""Converters of TFLite's elementwise ops: activations, arithmetic, softmax, normalisation."""

from __future__ import annotations

from tf2torch.conversion.graph.lower import to_layout_perm
from tf2torch.conversion.graph.registry import ANY, CF, SOURCE, Binding, LowerContext, Lowered
from tf2torch.conversion.graph.tflite import values
from tf2torch.conversion.graph.tflite.common import (
    axis_in,
    integer_valued,
    output_dtype,
    rank,
    role,
    spec,
)
from tf2torch.sources.ir import Node

_UNARY = {
    "RELU": "relu", "RELU6": "relu6", "RELU_N1_TO_1": "relu_n1_to_1",
    "RELU_0_TO_1": "relu_0_to_1", "LOGISTIC": "logistic", "TANH": "tanh",
    "HARD_SWISH": "hard_swish", "EXP": "exp", "LOG": "log", "ABS": "abs", "NEG": "neg",
    "SQRT": "sqrt", "RSQRT": "rsqrt", "SQUARE": "square", "FLOOR": "floor", "CEIL": "ceil",
    "ROUND": "round", "SIN": "sin", "COS": "cos", "ELU": "elu", "SIGN": "sign",
}
_BINARY = {
    "ADD": "add", "SUB": "sub", "MUL": "mul", "DIV": "div", "MAXIMUM": "maximum",
    "MINIMUM": "minimum", "POW": "pow", "SQUARED_DIFFERENCE": "squared_difference",
    "FLOOR_DIV": "floor_div", "PRELU": "prelu",
}
_FLOAT_OUT = {"float32", "float16"}


def _unary(fn: str):
    def convert(node: Node, ctx: LowerContext) -> Lowered:
        return Lowered(spec("Unary", fn=fn), ANY)

    convert.__name__ = f"convert_{fn}"
    return convert


def convert_leaky_relu(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(spec("Unary", fn="leaky_relu", alpha=node.attrs["alpha"]), ANY)


def convert_gelu(node: Node, ctx: LowerContext) -> Lowered:
    fn = "gelu_tanh" if node.attrs["approximate"] else "gelu"
    return Lowered(spec("Unary", fn=fn), ANY)


def convert_cast(node: Node, ctx: LowerContext) -> Lowered:
    """CAST / DEQUANTIZE. A DEQUANTIZE's input is already real-valued (the reader dequantized
    its constant, or the simulation carries real values); a CAST converts to its output
    type, float16 computing as float32 as the whole module does."""
    if node.op == "DEQUANTIZE" or node.outputs[0] in ctx.meta.get("quantization", {}):
        return Lowered(spec("Identity"), ANY)
    dtype = "float32" if output_dtype(node) in _FLOAT_OUT else output_dtype(node)
    return Lowered(spec("Apply", fn="cast", dtype=dtype), ANY)


def _binary(op: str):
    def convert(node: Node, ctx: LowerContext) -> Lowered:
        activation = node.attrs.get("activation", "linear")
        if "v" in node.attrs["operands"] or integer_valued(node, ctx):
            if activation != "linear":
                raise ValueError(f"fused {activation} on integer arithmetic")
            return values.INTEGER_ARITHMETIC["_" + op](node, ctx)  # shape arithmetic
        const_pos = [i for i in (0, 1) if role(node, i)]
        if not const_pos:
            if len(node.inputs) != 2:
                raise ValueError("integer constant operands are not converted")
            return Lowered(spec("Binary", op=op, activation=activation), ANY)
        if len(node.inputs) != 1:
            raise ValueError("both operands are constants")
        weight = role(node, const_pos[0])
        shape = tuple(ctx.weight_shape(weight))
        transform = "identity"
        if not shape:  # scalars are stored as (1,): the weight copy needs at least one axis
            shape, transform = (1,), "flatten"
        r, layout = rank(ctx), ctx.input_layouts[0]
        view = None
        if layout == CF and r >= 3 and len(shape) <= r:
            view = ((1,) * (r - len(shape)) + shape, to_layout_perm(r, CF))
        elif layout == CF:
            layout = SOURCE
        module = spec("Binary", op=op, activation=activation, const_shape=shape,
                      const_first=const_pos[0] == 0, const_view=view)
        return Lowered(module, layout, (Binding("constant", weight, transform),))

    convert.__name__ = f"convert_{op}"
    return convert


def convert_add_n(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(spec("AddN"), ANY)


def _last_axis_layout(ctx: LowerContext) -> tuple[int, str]:
    layout = ctx.input_layouts[0]
    return axis_in(-1, rank(ctx), layout), layout


def convert_softmax(node: Node, ctx: LowerContext) -> Lowered:
    axis, layout = _last_axis_layout(ctx)
    return Lowered(spec("Softmax", axis=axis, beta=node.attrs["beta"]), layout)


def convert_log_softmax(node: Node, ctx: LowerContext) -> Lowered:
    axis, layout = _last_axis_layout(ctx)
    return Lowered(spec("Softmax", axis=axis, log=True), layout)


def convert_l2_normalization(node: Node, ctx: LowerContext) -> Lowered:
    axis, layout = _last_axis_layout(ctx)
    return Lowered(spec("L2Normalize", axis=axis, activation=node.attrs["activation"]), layout)


CONVERTERS = {
    **{op: _unary(fn) for op, fn in _UNARY.items()},
    **{op: _binary(fn) for op, fn in _BINARY.items()},
    "LEAKY_RELU": convert_leaky_relu,
    "GELU": convert_gelu,
    "CAST": convert_cast,
    "DEQUANTIZE": convert_cast,
    "ADD_N": convert_add_n,
    "SOFTMAX": convert_softmax,
    "LOG_SOFTMAX": convert_log_softmax,
    "L2_NORMALIZATION": convert_l2_normalization,
}
