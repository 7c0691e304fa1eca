"""Converters of TFLite's value ops (runtime in `modules/values.py`): comparisons, logic,
selection, casts, SHAPE and the integer arithmetic on shapes, FILL, RANGE, BROADCAST_TO,
gathers and scatters, ONE_HOT, EMBEDDING_LOOKUP, REVERSE_V2, CUMSUM, ARG_MAX/ARG_MIN, and
the signal ops (RFFT2D, COMPLEX_ABS, REAL, IMAG).

They run in the source layout (channels-last): their constant operands are in it.
"""

from __future__ import annotations

from tf2torch.conversion.graph.registry import SOURCE, Binding, LowerContext, Lowered
from tf2torch.conversion.graph.tflite.common import (
    integer_valued,
    ints,
    operand,
    output_dtype,
    spec,
    value,
)
from tf2torch.sources.ir import Node


def constant_operands(node: Node, ctx: LowerContext) -> tuple[dict, tuple[Binding, ...]]:
    """The node's constant operands as a module's `literals` (small integer/bool values,
    inline) and `constants` (float arrays, bound as buffers `constant_<position>`)."""
    literals, constants, bindings = [], [], []
    dtypes = node.attrs.get("value_dtypes", {})
    for pos, kind in enumerate(node.attrs["operands"]):
        if kind == "v":
            literals.append([pos, value(node, pos), dtypes.get(str(pos), "int32")])
        elif kind.startswith("w:"):
            role = kind[2:]
            constants.append([pos, list(ctx.weight_shape(role))])
            transform = "flatten" if not ctx.weight_shape(role) else "identity"
            bindings.append(Binding(f"constant_{pos}", role, transform))
        elif kind in ("none", "dynamic", "state"):
            raise ValueError(f"operand {pos} is {kind}; a value op needs every operand")
    return {"literals": literals, "constants": constants}, tuple(bindings)


def _apply(fn: str):
    def convert(node: Node, ctx: LowerContext) -> Lowered:
        kwargs, bindings = constant_operands(node, ctx)
        return Lowered(spec("Apply", fn=fn, **kwargs), SOURCE, bindings)

    convert.__name__ = f"convert_{fn}"
    return convert


def _result_type(node: Node, ctx: LowerContext) -> str:
    """The output's type; a quantized output is carried as its real value (float32)."""
    return output_dtype(node) if integer_valued(node, ctx) or output_dtype(node) == "bool" \
        else "float32"


def convert_shape(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(spec("ShapeOf", dtype=output_dtype(node)), SOURCE)


def _with_constants(cls: str, **fixed):
    def convert(node: Node, ctx: LowerContext) -> Lowered:
        kwargs, bindings = constant_operands(node, ctx)
        return Lowered(spec(cls, **fixed, **kwargs), SOURCE, bindings)

    convert.__name__ = f"convert_{cls.lower()}_{'_'.join(map(str, fixed.values()))}".rstrip("_")
    return convert


def _typed(cls: str):
    """A module whose result type is the output tensor's (FILL, RANGE)."""
    def convert(node: Node, ctx: LowerContext) -> Lowered:
        kwargs, bindings = constant_operands(node, ctx)
        return Lowered(spec(cls, dtype=_result_type(node, ctx), **kwargs), SOURCE, bindings)

    convert.__name__ = f"convert_{cls.lower()}"
    return convert


def convert_one_hot(node: Node, ctx: LowerContext) -> Lowered:
    kwargs, bindings = constant_operands(node, ctx)
    return Lowered(spec("OneHot", axis=node.attrs["axis"], dtype=_result_type(node, ctx),
                        **kwargs),
                   SOURCE, bindings)


def convert_embedding_lookup(node: Node, ctx: LowerContext) -> Lowered:
    """EMBEDDING_LOOKUP(ids, table): a stored table (float, or int8 dequantized)."""
    kind = operand(node, 1)
    if not kind.startswith("w:"):
        raise ValueError("only a stored (constant) table is converted")
    rows, *row_shape = ctx.weight_shape(kind[2:])
    return Lowered(spec("EmbeddingLookup", rows=rows, row_shape=tuple(row_shape)), SOURCE,
                   (Binding("weight", kind[2:]),))


def convert_reverse_v2(node: Node, ctx: LowerContext) -> Lowered:
    r = len(ctx.input_shapes[0]) + 1
    return Lowered(spec("Reverse", axes=tuple(a % r for a in ints(node, 1))), SOURCE)


def convert_cumsum(node: Node, ctx: LowerContext) -> Lowered:
    axis = ints(node, 1)[0] % (len(ctx.input_shapes[0]) + 1)
    return Lowered(spec("Cumsum", axis=axis, exclusive=node.attrs["exclusive"],
                        reverse=node.attrs["reverse"]), SOURCE)


def _arg(kind: str):
    def convert(node: Node, ctx: LowerContext) -> Lowered:
        axis = ints(node, 1)[0] % (len(ctx.input_shapes[0]) + 1)
        return Lowered(spec("ArgReduce", kind=kind, axis=axis, dtype=output_dtype(node)),
                       SOURCE)

    convert.__name__ = f"convert_arg_{kind}"
    return convert


def convert_where(node: Node, ctx: LowerContext) -> Lowered:
    """WHERE(condition): coordinates of the true elements. Static only: the condition must
    not depend on the data (its size would be unknown while shapes are worked out)."""
    if len(node.inputs) != 1:
        raise ValueError("WHERE of a constant condition should have been folded")
    return Lowered(spec("Where"), SOURCE)


def convert_rfft2d(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(spec("Rfft2d", fft_length=tuple(ints(node, 1))), SOURCE)


def convert_bucketize(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(spec("Bucketize", boundaries=list(node.attrs["boundaries"])), SOURCE)


def convert_local_response_normalization(node: Node, ctx: LowerContext) -> Lowered:
    a = node.attrs
    return Lowered(spec("LocalResponseNorm", radius=a["radius"], bias=a["bias"],
                        alpha=a["alpha"], beta=a["beta"]), SOURCE)


_COMPARISONS = {"EQUAL": "equal", "NOT_EQUAL": "not_equal", "LESS": "less",
                "LESS_EQUAL": "less_equal", "GREATER": "greater",
                "GREATER_EQUAL": "greater_equal"}
_LOGICAL = {"LOGICAL_AND": "logical_and", "LOGICAL_OR": "logical_or",
            "LOGICAL_NOT": "logical_not"}

# Integer arithmetic (shape computations): the float Binary op hands these over.
INTEGER_ARITHMETIC = {f"_{fn}": _apply(fn) for fn in (
    "add", "sub", "mul", "div", "floor_div", "maximum", "minimum", "pow",
    "squared_difference")}

CONVERTERS = {
    **{op: _apply(fn) for op, fn in {**_COMPARISONS, **_LOGICAL}.items()},
    "SELECT": _apply("select"),
    "SELECT_V2": _apply("select"),
    "WHERE": convert_where,
    "FLOOR_MOD": _apply("floor_mod"),
    "ZEROS_LIKE": _apply("zeros_like"),
    "SHAPE": convert_shape,
    "FILL": _typed("Fill"),
    "RANGE": _typed("Range"),
    "BROADCAST_TO": _with_constants("BroadcastTo"),
    "GATHER_ND": _with_constants("GatherNd"),
    "SCATTER_ND": _with_constants("ScatterNd"),
    "ONE_HOT": convert_one_hot,
    "EMBEDDING_LOOKUP": convert_embedding_lookup,
    "REVERSE_V2": convert_reverse_v2,
    "CUMSUM": convert_cumsum,
    "ARG_MAX": _arg("max"),
    "ARG_MIN": _arg("min"),
    "RFFT2D": convert_rfft2d,
    "ATAN2": _apply("atan2"),
    "BROADCAST_ARGS": _apply("broadcast_args"),
    "MATRIX_DIAG": _apply("matrix_diag"),
    "MATRIX_SET_DIAG": _apply("matrix_set_diag"),
    "TOPK_V2": _with_constants("TopK"),
    "SEGMENT_SUM": _with_constants("SegmentReduce", kind="sum"),
    "UNSORTED_SEGMENT_SUM": _with_constants("SegmentReduce", kind="sum"),
    "UNSORTED_SEGMENT_MAX": _with_constants("SegmentReduce", kind="amax"),
    "UNSORTED_SEGMENT_MIN": _with_constants("SegmentReduce", kind="amin"),
    "UNSORTED_SEGMENT_PROD": _with_constants("SegmentReduce", kind="prod"),
    "DYNAMIC_UPDATE_SLICE": _with_constants("DynamicUpdateSlice"),
    "BUCKETIZE": convert_bucketize,
    "LOCAL_RESPONSE_NORMALIZATION": convert_local_response_normalization,
    "COMPLEX_ABS": _apply("complex_abs"),
    "REAL": _apply("real"),
    "IMAG": _apply("imag"),
}
