"""Converters of TFLite's shape ops: reshape, transpose, pad, concat, reduce, slice, split..."""

from __future__ import annotations

from tf2torch.conversion.graph.registry import CF, SOURCE, Binding, LowerContext, Lowered
from tf2torch.conversion.graph.tflite.common import (
    axis_in,
    common_layout,
    integer_valued,
    ints,
    operand,
    output_dtype,
    output_shape,
    rank,
    role,
    spec,
    static_dim,
    value,
)
from tf2torch.conversion.graph.tflite.values import constant_operands
from tf2torch.sources.ir import Node


def _reshape_to(shape: list[int]) -> Lowered:
    keep_batch = bool(shape) and shape[0] in (1, -1)
    return Lowered(spec("Reshape", shape=tuple(shape), keep_batch=keep_batch), SOURCE)


def convert_reshape(node: Node, ctx: LowerContext) -> Lowered:
    if operand(node, 1) == "v":
        return _reshape_to(ints(node, 1))
    if operand(node, 1).startswith("in:"):  # several sizes known only at run time
        return Lowered(spec("DynamicReshape"), SOURCE)
    return _reshape_to(node.attrs.get("new_shape") or output_shape(node))


def convert_to_output_shape(node: Node, ctx: LowerContext) -> Lowered:
    """SQUEEZE / EXPAND_DIMS: a reshape to the output shape the file records."""
    return _reshape_to(output_shape(node))


def convert_transpose(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(spec("Transpose", perm=tuple(ints(node, 1))), SOURCE)


def _pad_mode(node: Node) -> str:
    if node.op != "MIRROR_PAD":
        return "constant"
    return "symmetric" if node.attrs["mode"] == 1 else "reflect"


def _pad_value(node: Node) -> float:
    if node.op != "PADV2" or operand(node, 2) != "v":
        return 0.0
    fill = value(node, 2)
    return float(fill[0] if isinstance(fill, list) else fill)


def convert_pad(node: Node, ctx: LowerContext) -> Lowered:
    """PAD / PADV2 / MIRROR_PAD: channels-first when only H and W are padded."""
    pads = [tuple(p) for p in value(node, 1)]
    r, layout = rank(ctx), ctx.input_layouts[0]
    if layout == CF and r == 4 and pads[0] == (0, 0) and pads[-1] == (0, 0):
        flat = [*pads[2], *pads[1]]  # F.pad lists the last dim (W) first
    else:
        layout = SOURCE
        flat = [x for p in reversed(pads) for x in p]
    return Lowered(spec("PadND", pads=flat, mode=_pad_mode(node), value=_pad_value(node)),
                   layout)


def convert_concatenation(node: Node, ctx: LowerContext) -> Lowered:
    if len(node.inputs) != len(node.attrs["operands"]):
        return _join("concat", node, ctx, node.attrs["axis"] % len(output_shape(node)))
    layout = common_layout(ctx)
    axis = axis_in(node.attrs["axis"], rank(ctx), layout)
    return Lowered(spec("Concat", axis=axis, activation=node.attrs["activation"]), layout)


def _reduce(kind: str):
    def convert(node: Node, ctx: LowerContext) -> Lowered:
        r, layout = rank(ctx), ctx.input_layouts[0]
        axes = sorted({a % r for a in ints(node, 1)})
        keep = node.attrs["keep_dims"]
        if layout == CF and not keep and r - len(axes) >= 3:
            layout = SOURCE  # the output's axes would not be in channels-first order
        axes = sorted(axis_in(a, r, layout) for a in axes)
        return Lowered(spec("Reduce", kind=kind, axes=tuple(axes), keepdims=keep), layout)

    convert.__name__ = f"convert_reduce_{kind}"
    return convert


def _dynamic_slice(node: Node, ctx: LowerContext, **options) -> Lowered:
    kwargs, bindings = constant_operands(node, ctx)
    return Lowered(spec("DynamicSlice", **options, literals=kwargs["literals"]), SOURCE,
                   bindings)


def convert_strided_slice(node: Node, ctx: LowerContext) -> Lowered:
    a = node.attrs
    masks = tuple(a[k] for k in ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask",
                                 "shrink_axis_mask"))
    if any(operand(node, p) != "v" for p in (1, 2, 3)) or a["offset"]:
        if a["offset"]:
            raise ValueError("offset strided slices with computed bounds are not converted")
        return _dynamic_slice(node, ctx, masks=masks)
    begin, end, strides = ints(node, 1), ints(node, 2), ints(node, 3)
    if any(s < 0 for s in strides):
        return _dynamic_slice(node, ctx, masks=masks)
    r = rank(ctx)
    n_real = len(begin) - bin(a["new_axis_mask"]).count("1") - (1 if a["ellipsis_mask"] else 0)
    items: list = []
    for i, (b, e, s) in enumerate(zip(begin, end, strides, strict=True)):
        bit = 1 << i
        if a["ellipsis_mask"] & bit:
            items += [[None, None, None]] * (r - n_real)
        elif a["new_axis_mask"] & bit:
            items.append("new")
        elif a["shrink_axis_mask"] & bit:
            items.append(b)
        else:
            stop = b + e if a["offset"] else e
            items.append([None if a["begin_mask"] & bit else b,
                          None if a["end_mask"] & bit else stop, s])
    return Lowered(spec("Slice", items=_whole_batch(items, node, ctx)), SOURCE)


def _whole_batch(items: list, node: Node, ctx: LowerContext) -> list:
    """A slice of axis 0 covering the file's whole (fixed) batch keeps any batch size
    (not of integer vectors: a shape's axis 0 is no batch)."""
    if integer_valued(node, ctx) or node.attrs.get("unrolled"):
        return items  # a shape's axis 0, or a loop body's (time, not batch)
    if items and isinstance(items[0], list) and node.attrs["output_shapes"]:
        start, stop, step = items[0]
        batch = output_shape(node)[0]
        if start in (0, None) and step == 1 and stop is not None and 0 < batch <= stop:
            items = [[None, None, None], *items[1:]]
    return items


def convert_slice(node: Node, ctx: LowerContext) -> Lowered:
    if operand(node, 1) != "v" or operand(node, 2) != "v":
        return _dynamic_slice(node, ctx, sizes=True)
    items = [[b, None if s == -1 else b + s, 1]
             for b, s in zip(ints(node, 1), ints(node, 2), strict=True)]
    return Lowered(spec("Slice", items=_whole_batch(items, node, ctx)), SOURCE)


def convert_split(node: Node, ctx: LowerContext) -> Lowered:
    r, layout = rank(ctx), ctx.input_layouts[0]
    axis = ints(node, 0)[0] % r
    n = node.attrs["num_splits"]
    sizes = (static_dim(ctx, axis) // n,) * n
    return Lowered(spec("Split", sizes=sizes, axis=axis_in(axis, r, layout)), layout)


def convert_split_v(node: Node, ctx: LowerContext) -> Lowered:
    r, layout = rank(ctx), ctx.input_layouts[0]
    axis = ints(node, 2)[0] % r
    sizes = ints(node, 1)
    if -1 in sizes:
        sizes[sizes.index(-1)] = static_dim(ctx, axis) - (sum(sizes) + 1)
    return Lowered(spec("Split", sizes=tuple(sizes), axis=axis_in(axis, r, layout)), layout)


def _join(kind: str, node: Node, ctx: LowerContext, axis: int) -> Lowered:
    """PACK / CONCATENATION with constant operands: integer shape arithmetic."""
    kwargs, bindings = constant_operands(node, ctx)
    return Lowered(spec("Join", kind=kind, axis=axis, dtype=output_dtype(node), **kwargs),
                   SOURCE, bindings)


def convert_pack(node: Node, ctx: LowerContext) -> Lowered:
    out_rank = len(output_shape(node))
    axis = node.attrs["axis"] % out_rank
    if len(node.inputs) != len(node.attrs["operands"]):
        return _join("stack", node, ctx, axis)
    return Lowered(spec("Stack", axis=axis), SOURCE)


def convert_unpack(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(spec("Unstack", axis=node.attrs["axis"] % rank(ctx)), SOURCE)


def convert_gather(node: Node, ctx: LowerContext) -> Lowered:
    if node.attrs["batch_dims"] != 0:
        raise ValueError("GATHER with batch_dims is not converted")
    if operand(node, 0) == "in:0" and operand(node, 1) == "v":
        axis = node.attrs["axis"] % rank(ctx)
        return Lowered(spec("Gather", indices=value(node, 1), axis=axis), SOURCE)
    kwargs, bindings = constant_operands(node, ctx)  # computed indices, or stored params
    return Lowered(spec("GatherTensor", axis=node.attrs["axis"], **kwargs), SOURCE, bindings)


def convert_tile(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(spec("Tile", multiples=tuple(ints(node, 1))), SOURCE)


def convert_batch_matmul(node: Node, ctx: LowerContext) -> Lowered:
    weight = role(node, 1)
    const_shape = tuple(ctx.weight_shape(weight)) if weight else None
    module = spec("BatchMatMul", adj_x=node.attrs["adj_x"], adj_y=node.attrs["adj_y"],
                  const_shape=const_shape)
    return Lowered(module, SOURCE, (Binding("constant", weight),) if weight else ())


def convert_depth_to_space(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(spec("DepthToSpace", block=node.attrs["block_size"]), SOURCE)


def convert_space_to_depth(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(spec("DepthToSpace", block=node.attrs["block_size"], inverse=True), SOURCE)


def convert_space_to_batch_nd(node: Node, ctx: LowerContext) -> Lowered:
    pads = tuple(tuple(p) for p in value(node, 2))
    return Lowered(spec("SpaceToBatch", block=tuple(ints(node, 1)), pads=pads), SOURCE)


def convert_batch_to_space_nd(node: Node, ctx: LowerContext) -> Lowered:
    crops = tuple(tuple(p) for p in value(node, 2))
    return Lowered(spec("BatchToSpace", block=tuple(ints(node, 1)), crops=crops), SOURCE)


CONVERTERS = {
    "SPACE_TO_BATCH_ND": convert_space_to_batch_nd,
    "BATCH_TO_SPACE_ND": convert_batch_to_space_nd,
    "RESHAPE": convert_reshape,
    "SQUEEZE": convert_to_output_shape,
    "EXPAND_DIMS": convert_to_output_shape,
    "TRANSPOSE": convert_transpose,
    "PAD": convert_pad,
    "PADV2": convert_pad,
    "MIRROR_PAD": convert_pad,
    "CONCATENATION": convert_concatenation,
    "MEAN": _reduce("mean"),
    "SUM": _reduce("sum"),
    "REDUCE_MAX": _reduce("max"),
    "REDUCE_MIN": _reduce("min"),
    "REDUCE_PROD": _reduce("prod"),
    "REDUCE_ANY": _reduce("any"),
    "REDUCE_ALL": _reduce("all"),
    "STRIDED_SLICE": convert_strided_slice,
    "SLICE": convert_slice,
    "SPLIT": convert_split,
    "SPLIT_V": convert_split_v,
    "PACK": convert_pack,
    "UNPACK": convert_unpack,
    "GATHER": convert_gather,
    "TILE": convert_tile,
    "BATCH_MATMUL": convert_batch_matmul,
    "DEPTH_TO_SPACE": convert_depth_to_space,
    "SPACE_TO_DEPTH": convert_space_to_depth,
}
