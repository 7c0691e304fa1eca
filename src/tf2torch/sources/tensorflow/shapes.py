"""Static shape inference for TF nodes, batch dimension unknown (None).

Used where a graph does not record `_output_shapes` (frozen GraphDefs): to fold `Shape`
and the shape arithmetic behind it, and to know a folded weight's shape without reading
it. A shape is a tuple of ints and Nones (unknown size), or None (unknown rank); a node
whose op has no rule here gets unknown shapes, which only matters if a `Shape` reads it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tf2torch.sources.tensorflow.nodes import TfNode
from tf2torch.sources.tensorflow.slicing import apply_items, strided_slice_items

Shape = tuple[int | None, ...] | None


@dataclass
class Facts:
    """What is known about one tensor: shape, TF dtype enum, and a value when static (a
    numpy array, possibly of objects with None for unknown entries, or a lazy weight)."""

    shape: Shape
    dtype: int = 1
    value: Any = None


def broadcast(*shapes: Shape) -> Shape:
    if any(s is None for s in shapes):
        return None
    rank = max(len(s) for s in shapes)
    out: list[int | None] = []
    for axis in range(rank):
        dims = [s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0]
        known = [d for d in dims if d is not None and d != 1]
        if known:
            out.append(known[0])
        elif any(d is None for d in dims):
            out.append(None)
        else:
            out.append(1)
    return tuple(out)


def static(facts: Facts) -> list | None:
    """The value of an integer operand as a list (None entries where unknown)."""
    if facts.value is None or not isinstance(facts.value, np.ndarray):
        return None
    return facts.value.reshape(-1).tolist()


def _same(node: TfNode, ins: list[Facts]) -> list[Shape]:
    return [ins[0].shape]


def _broadcast(node: TfNode, ins: list[Facts]) -> list[Shape]:
    return [broadcast(*(f.shape for f in ins))]


_CONVS = ("Conv2D", "Conv3D", "DepthwiseConv2dNative")


def _spatial(node: TfNode, ins: list[Facts]) -> list[Shape]:
    """Conv / depthwise / pooling output: NHWC or NCHW, SAME, VALID or EXPLICIT padding."""
    x = ins[0].shape
    if x is None:
        return [None]
    channels_first = str(node.attr("data_format", "NHWC")).startswith("NC")
    rank = len(x) - 2
    spatial_axes = list(range(2, 2 + rank)) if channels_first else list(range(1, 1 + rank))
    c_axis = 1 if channels_first else len(x) - 1
    strides = node.attr("strides") or [1] * len(x)
    dilations = node.attr("dilations") or [1] * len(x)
    filt = ins[1].shape if node.op in _CONVS else None
    ksize = node.attr("ksize")
    if ksize is None and filt is None:
        return [None]
    pads = node.attr("explicit_paddings") or []
    out = list(x)
    for i, axis in enumerate(spatial_axes):
        k = ksize[axis] if ksize else filt[i]
        d = dilations[axis] if len(dilations) == len(x) else 1
        size = x[axis]
        if size is None or k is None:
            out[axis] = None
            continue
        effective = (k - 1) * d + 1
        padding = node.attr("padding", "VALID")
        if padding == "SAME":
            out[axis] = -(-size // strides[axis])
        elif padding == "EXPLICIT":
            total = pads[2 * axis] + pads[2 * axis + 1]
            out[axis] = (size + total - effective) // strides[axis] + 1
        else:
            out[axis] = (size - effective) // strides[axis] + 1
    if filt is not None and ksize is None:
        if node.op == "DepthwiseConv2dNative":
            out[c_axis] = None if x[c_axis] is None else x[c_axis] * filt[-1]
        else:
            out[c_axis] = filt[-1]
    return [tuple(out)]


def _matmul(node: TfNode, ins: list[Facts]) -> list[Shape]:
    a, b = ins[0].shape, ins[1].shape
    if a is None or b is None:
        return [None]
    ta = node.attr("transpose_a", False) or node.attr("adj_x", False)
    tb = node.attr("transpose_b", False) or node.attr("adj_y", False)
    rows = a[-1] if ta else a[-2]
    cols = b[-2] if tb else b[-1]
    batch = broadcast(a[:-2], b[:-2]) or ()
    return [(*batch, rows, cols)]


def _reshape(node: TfNode, ins: list[Facts]) -> list[Shape]:
    target = static(ins[1])
    if target is None:
        return [None]
    dims = [None if d is None or d < 0 else int(d) for d in target]
    x = ins[0].shape
    if target.count(-1) == 1 and x is not None and None not in x:
        known = math.prod(d for d in dims if d is not None)
        dims[target.index(-1)] = math.prod(x) // known if known else 0
    return [tuple(dims)]


def _axes(values: list | None, rank: int) -> list[int] | None:
    if values is None or None in values:
        return None
    return sorted({int(a) % rank for a in values})


def _reduce(node: TfNode, ins: list[Facts]) -> list[Shape]:
    x = ins[0].shape
    if x is None:
        return [None]
    axes = _axes(static(ins[1]), len(x)) if len(ins) > 1 else list(range(len(x)))
    if axes is None:
        return [None]
    keep = node.attr("keep_dims", node.attr("keepdims", False))
    if node.op in ("ArgMax", "ArgMin"):
        keep = False
    return [tuple((1 if i in axes else d) for i, d in enumerate(x) if keep or i not in axes)]


def _squeeze(node: TfNode, ins: list[Facts]) -> list[Shape]:
    x = ins[0].shape
    if x is None:
        return [None]
    dims = node.attr("squeeze_dims") or []
    axes = {d % len(x) for d in dims} if dims else {i for i, d in enumerate(x) if d == 1}
    return [tuple(d for i, d in enumerate(x) if i not in axes)]


def _expand_dims(node: TfNode, ins: list[Facts]) -> list[Shape]:
    x, axis = ins[0].shape, static(ins[1])
    if x is None or not axis or axis[0] is None:
        return [None]
    at = int(axis[0]) % (len(x) + 1)
    return [(*x[:at], 1, *x[at:])]


def _transpose(node: TfNode, ins: list[Facts]) -> list[Shape]:
    x, perm = ins[0].shape, static(ins[1])
    if x is None or perm is None or None in perm:
        return [None]
    return [tuple(x[int(p)] for p in perm)]


def _concat(node: TfNode, ins: list[Facts]) -> list[Shape]:
    shapes = [f.shape for f in ins[:-1]]
    axis = static(ins[-1])
    if any(s is None for s in shapes) or not axis or axis[0] is None:
        return [None]
    axis_i = int(axis[0]) % len(shapes[0])
    sizes = [s[axis_i] for s in shapes]
    out = list(broadcast(*[tuple(1 if i == axis_i else d for i, d in enumerate(s))
                           for s in shapes]))
    out[axis_i] = None if None in sizes else sum(sizes)
    return [tuple(out)]


def _pack(node: TfNode, ins: list[Facts]) -> list[Shape]:
    x = ins[0].shape
    if x is None:
        return [None]
    axis = node.attr("axis", 0) % (len(x) + 1)
    return [(*x[:axis], len(ins), *x[axis:])]


def _unpack(node: TfNode, ins: list[Facts]) -> list[Shape]:
    x = ins[0].shape
    if x is None:
        return [None] * node.attr("num", node.outputs)
    axis = node.attr("axis", 0) % len(x)
    return [x[:axis] + x[axis + 1:]] * node.attr("num", x[axis] or node.outputs)


def _split(node: TfNode, ins: list[Facts]) -> list[Shape]:
    axis_facts, x = (ins[0], ins[1].shape) if node.op == "Split" else (ins[2], ins[0].shape)
    n = node.attr("num_split", node.outputs)
    axis = static(axis_facts)
    if x is None or not axis or axis[0] is None:
        return [None] * n
    a = int(axis[0]) % len(x)
    if node.op == "Split":
        sizes = [None if x[a] is None else x[a] // n] * n
    else:
        sizes = static(ins[1]) or [None] * n
        if -1 in sizes and x[a] is not None:
            sizes[sizes.index(-1)] = x[a] - sum(s for s in sizes if s != -1)
    return [tuple(s if i == a else d for i, d in enumerate(x)) for s in sizes]


def _pad(node: TfNode, ins: list[Facts]) -> list[Shape]:
    x, pads = ins[0].shape, static(ins[1])
    if x is None or pads is None or None in pads:
        return [None]
    return [tuple(None if d is None else d + pads[2 * i] + pads[2 * i + 1]
                  for i, d in enumerate(x))]


def _strided_slice(node: TfNode, ins: list[Facts]) -> list[Shape]:
    x = ins[0].shape
    b, e, s = (static(f) for f in ins[1:4])
    if x is None or b is None or e is None or s is None or None in b + e + s:
        return [None]
    return [apply_items(x, strided_slice_items(len(x), b, e, s, node.attrs))]


def _slice(node: TfNode, ins: list[Facts]) -> list[Shape]:
    x, begin, size = ins[0].shape, static(ins[1]), static(ins[2])
    if x is None or begin is None or size is None:
        return [None]
    return [tuple((None if d is None or b is None else d - b) if s == -1 else s
                  for d, b, s in zip(x, begin, size, strict=True))]


def _gather(node: TfNode, ins: list[Facts]) -> list[Shape]:
    params, indices = ins[0].shape, ins[1].shape
    axis = static(ins[2]) if len(ins) > 2 else [0]
    if params is None or indices is None or not axis or axis[0] is None:
        return [None]
    a = int(axis[0]) % len(params)
    return [(*params[:a], *indices, *params[a + 1:])]


def _tile(node: TfNode, ins: list[Facts]) -> list[Shape]:
    x, multiples = ins[0].shape, static(ins[1])
    if x is None or multiples is None:
        return [None]
    return [tuple(None if d is None or m is None else d * m for d, m in zip(x, multiples,
                                                                            strict=True))]


def _from_value(position: int) -> Callable[[TfNode, list[Facts]], list[Shape]]:
    def infer(node: TfNode, ins: list[Facts]) -> list[Shape]:
        dims = static(ins[position])
        return [None if dims is None else tuple(None if d is None else int(d) for d in dims)]
    return infer


def _resize(node: TfNode, ins: list[Facts]) -> list[Shape]:
    x, size = ins[0].shape, static(ins[1])
    if x is None or size is None:
        return [None]
    return [(x[0], *size, x[3])]


def _shape_vector(node: TfNode, ins: list[Facts]) -> list[Shape]:
    return [None if ins[0].shape is None else (len(ins[0].shape),)]


def _scalar(node: TfNode, ins: list[Facts]) -> list[Shape]:
    return [()]


def _range(node: TfNode, ins: list[Facts]) -> list[Shape]:
    start, limit, delta = (static(f) for f in ins[:3])
    if not (start and limit and delta) or None in start + limit + delta:
        return [(None,)]
    return [(len(np.arange(start[0], limit[0], delta[0])),)]


def _einsum(node: TfNode, ins: list[Facts]) -> list[Shape]:
    equation = node.attr("equation", "").replace(" ", "")
    lhs, _, rhs = equation.partition("->")
    sizes: dict[str, int | None] = {}
    for term, facts in zip(lhs.split(","), ins, strict=False):
        if facts.shape is None or "." in term:
            return [None]
        for letter, size in zip(term, facts.shape, strict=False):
            sizes[letter] = sizes.get(letter) or size
    return [tuple(sizes.get(letter) for letter in rhs)]


def _topk(node: TfNode, ins: list[Facts]) -> list[Shape]:
    x, k = ins[0].shape, static(ins[1])
    if x is None:
        return [None, None]
    out = (*x[:-1], k[0] if k else None)
    return [out, out]


def _fused_batch_norm(node: TfNode, ins: list[Facts]) -> list[Shape]:
    channels = ins[1].shape
    return [ins[0].shape, *([channels] * 5)]


_UNARY = (
    "Relu", "Relu6", "Elu", "Selu", "Sigmoid", "Tanh", "Softplus", "Softsign", "Erf", "Erfc", "Exp",
    "Expm1", "Log", "Log1p", "Neg", "Abs", "Sqrt", "Rsqrt", "Square", "Reciprocal", "Inv", "Floor",
    "Ceil", "Round", "Rint", "Sign", "Sin", "Cos", "Tan", "LeakyRelu", "Cast", "Identity",
    "StopGradient", "Snapshot", "PreventGradient", "CheckNumerics", "EnsureShape", "Softmax",
    "LogSoftmax", "ZerosLike", "OnesLike", "IsNan", "IsInf", "IsFinite", "LogicalNot", "Gelu",
    "ReadVariableOp", "PlaceholderWithDefault", "BiasAdd", "Atan", "Asin", "Acos", "Sinh", "Cosh",
    "Asinh", "Acosh", "Atanh", "Digamma", "Lgamma", "MirrorPadGrad", "Invert", "ClipByValue"
)
_BINARY = (
    "Add", "AddV2", "Sub", "Mul", "RealDiv", "Div", "DivNoNan", "FloorDiv", "FloorMod", "TruncateDiv",
    "TruncateMod", "Maximum", "Minimum", "Pow", "SquaredDifference", "Equal", "NotEqual", "Less",
    "LessEqual", "Greater", "GreaterEqual", "LogicalAnd", "LogicalOr", "Select", "SelectV2",
    "BitwiseAnd", "BitwiseOr", "BitwiseXor", "LeftShift", "RightShift", "Atan2", "Xdivy", "Xlogy",
    "MulNoNan", "AddN"
)

SHAPE_RULES: dict[str, Callable[[TfNode, list[Facts]], list[Shape]]] = {
    **dict.fromkeys(_UNARY, _same),
    **dict.fromkeys(_BINARY, _broadcast),
    **dict.fromkeys(("Conv2D", "Conv3D", "DepthwiseConv2dNative", "MaxPool", "AvgPool",
                     "MaxPool3D", "AvgPool3D"), _spatial),
    **dict.fromkeys(("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"),
                    _fused_batch_norm),
    **dict.fromkeys(("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"), _matmul),
    **dict.fromkeys(("Mean", "Sum", "Max", "Min", "Prod", "All", "Any", "ArgMax", "ArgMin"),
                    _reduce),
    **dict.fromkeys(("Pad", "PadV2", "MirrorPad"), _pad),
    **dict.fromkeys(("Split", "SplitV"), _split),
    **dict.fromkeys(("ResizeBilinear", "ResizeNearestNeighbor", "ResizeBicubic"), _resize),
    **dict.fromkeys(("Shape", "ShapeN"), _shape_vector),
    **dict.fromkeys(("Size", "Rank"), _scalar),
    "Reshape": _reshape,
    "Squeeze": _squeeze,
    "ExpandDims": _expand_dims,
    "Transpose": _transpose,
    "ConcatV2": _concat,
    "Pack": _pack,
    "Unpack": _unpack,
    "StridedSlice": _strided_slice,
    "Slice": _slice,
    "GatherV2": _gather,
    "Gather": _gather,
    "Tile": _tile,
    "Fill": _from_value(0),
    "BroadcastTo": _from_value(1),
    "Conv2DBackpropInput": _from_value(0),
    "Range": _range,
    "Einsum": _einsum,
    "TopKV2": _topk,
}


def infer(node: TfNode, ins: Sequence[Facts]) -> list[Shape]:
    """Output shapes of `node`: its recorded `_output_shapes`, else the rule for its op."""
    recorded = node.attr("_output_shapes")
    if recorded:
        return list(recorded)
    rule = SHAPE_RULES.get(node.op)
    if rule is None:
        return [None] * node.outputs
    try:
        return rule(node, list(ins))
    except (IndexError, TypeError, ValueError, ZeroDivisionError):
        return [None] * node.outputs
