"""Converters of TF's shape and data-movement ops."""

from __future__ import annotations

import math

from tf2torch.conversion.graph.registry import CF, SOURCE, Binding, LowerContext, Lowered
from tf2torch.conversion.graph.tensorflow.common import (
    axis_in,
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
from tf2torch.sources.tensorflow.slicing import strided_slice_items


def _flat(v) -> list:
    return [x for item in v for x in _flat(item)] if isinstance(v, list) else [v]


def convert_reshape(node: Node, ctx: LowerContext) -> Lowered:
    """The target shape may leave the batch open (None): it becomes -1."""
    shape = _flat(value(node, 1))
    unknown = [i for i, d in enumerate(shape) if d is None]
    if len(unknown) > 1:
        raise ValueError(f"target shape {shape} has several sizes known only at run time")
    if unknown and -1 in shape:
        if unknown != [0] or None in ctx.input_shapes[0]:
            raise ValueError(f"target shape {shape} has both -1 and a run-time size")
        known = math.prod(d for d in shape[1:] if d != -1)
        shape[shape.index(-1)] = math.prod(ctx.input_shapes[0]) // known
    if unknown:
        shape[unknown[0]] = -1
    keep_batch = bool(shape) and shape[0] in (1, -1)
    return Lowered(tflite_spec("Reshape", shape=tuple(shape), keep_batch=keep_batch), SOURCE)


def convert_squeeze(node: Node, ctx: LowerContext) -> Lowered:
    r = rank(ctx)
    dims = node.attrs.get("squeeze_dims") or [i + 1 for i, d in enumerate(ctx.input_shapes[0])
                                              if d == 1]
    return Lowered(tf_spec("Squeeze", dims=tuple(sorted(d % r for d in dims))), SOURCE)


def convert_expand_dims(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(tf_spec("ExpandDims", axis=ints(node, 1)[0] % (rank(ctx) + 1)), SOURCE)


def convert_transpose(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(tflite_spec("Transpose", perm=tuple(ints(node, 1))), SOURCE)


def convert_concat(node: Node, ctx: LowerContext) -> Lowered:
    count = len(node.attrs["operands"]) - 1
    axis = ints(node, count)[0]
    shapes, bindings = {}, []
    for pos in range(count):
        if role(node, pos):
            shapes[str(pos)] = list(ctx.weight_shape(role(node, pos)))
            bindings.append(Binding(f"const{pos}", role(node, pos)))
        elif not operand(node, pos).startswith("in:"):
            raise ValueError(f"constant input {pos} is not converted")
    ranks = {len(s) for s in ctx.input_shapes}
    layout = CF if not shapes and len(ranks) == 1 and CF in ctx.input_layouts else SOURCE
    r = rank(ctx)
    return Lowered(tf_spec("Concat", axis=axis_in(axis, r, layout), const_shapes=shapes or None),
                   layout, tuple(bindings))


def convert_pack(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(tflite_spec("Stack", axis=node.attrs.get("axis", 0) % (rank(ctx) + 1)),
                   SOURCE)


def convert_unpack(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(tflite_spec("Unstack", axis=node.attrs.get("axis", 0) % rank(ctx)), SOURCE)


def _split(node: Node, ctx: LowerContext, axis: int, sizes: list[int]) -> Lowered:
    r, layout = rank(ctx), follow_layout(ctx)
    return Lowered(tflite_spec("Split", sizes=tuple(sizes), axis=axis_in(axis, r, layout)),
                   layout)


def convert_split(node: Node, ctx: LowerContext) -> Lowered:
    r = rank(ctx)
    axis = ints(node, 0)[0] % r
    size = ctx.input_shapes[0][axis - 1] if axis else None
    if size is None:
        raise ValueError(f"axis {axis} has no static size")
    n = node.attrs["num_split"]
    return _split(node, ctx, axis, [size // n] * n)


def convert_split_v(node: Node, ctx: LowerContext) -> Lowered:
    r = rank(ctx)
    axis = ints(node, 2)[0] % r
    sizes = ints(node, 1)
    if -1 in sizes:
        total = ctx.input_shapes[0][axis - 1] if axis else None
        if total is None:
            raise ValueError(f"axis {axis} has no static size")
        sizes[sizes.index(-1)] = total - (sum(sizes) + 1)
    return _split(node, ctx, axis, sizes)


def _open(v):
    return None if v is None else int(v)


def convert_strided_slice(node: Node, ctx: LowerContext) -> Lowered:
    begin, end, strides = (_flat(value(node, p)) for p in (1, 2, 3))
    if None in strides:
        raise ValueError("strides depend on the batch size")
    # a bound known only at run time is the batch size: the slice runs to the end
    items = strided_slice_items(rank(ctx), [0 if b is None else b for b in begin],
                                end, strides, node.attrs)
    items = [[i[0], None if i[1] is None else _open(i[1]), i[2]] if isinstance(i, list) else i
             for i in items]
    return Lowered(tf_spec("StridedSlice", items=items), SOURCE)


def convert_slice(node: Node, ctx: LowerContext) -> Lowered:
    begin, size = _flat(value(node, 1)), _flat(value(node, 2))
    items = [[b or 0, None if s is None or s == -1 or b is None else b + s, 1]
             for b, s in zip(begin, size, strict=True)]
    return Lowered(tf_spec("StridedSlice", items=items), SOURCE)


def convert_gather(node: Node, ctx: LowerContext) -> Lowered:
    if node.attrs.get("batch_dims", 0):
        raise ValueError("batch_dims is not converted")
    axis = ints(node, 2)[0]
    params_rank = len(node.attrs["input_shapes"][0] or [])
    axis %= max(params_rank, 1)
    if role(node, 0):
        name = role(node, 0)
        if operand(node, 1) == "v":
            raise ValueError("both operands are constants")
        return Lowered(tf_spec("Gather", axis=axis,
                               const_shapes={"0": list(ctx.weight_shape(name))}), SOURCE,
                       (Binding("const0", name),))
    if operand(node, 1) == "v":
        return Lowered(tf_spec("Gather", axis=axis, indices=value(node, 1)), SOURCE)
    return Lowered(tf_spec("Gather", axis=axis), SOURCE)


def convert_tile(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(tflite_spec("Tile", multiples=tuple(ints(node, 1))), SOURCE)


def convert_pad(node: Node, ctx: LowerContext) -> Lowered:
    """Pad / PadV2 / MirrorPad: channels-first when only H and W are padded."""
    flat = ints(node, 1)
    pads = [tuple(flat[i:i + 2]) for i in range(0, len(flat), 2)]
    mode = {"REFLECT": "reflect", "SYMMETRIC": "symmetric"}.get(node.attrs.get("mode", ""),
                                                                  "constant")
    fill = scalar(node, 2) if node.op == "PadV2" else 0.0
    r, layout = rank(ctx), follow_layout(ctx)
    if layout == CF and r == 4 and pads[0] == (0, 0) and pads[-1] == (0, 0):
        arg = [*pads[2], *pads[1]]  # F.pad lists the last dim (W) first
    else:
        layout = SOURCE
        arg = [x for p in reversed(pads) for x in p]
    return Lowered(tflite_spec("PadND", pads=arg, mode=mode, value=fill), layout)


def _nhwc_only(node: Node) -> None:
    if str(node.attrs.get("data_format", "NHWC")) != "NHWC":
        raise ValueError("only NHWC is converted")


def convert_depth_to_space(node: Node, ctx: LowerContext) -> Lowered:
    _nhwc_only(node)
    return Lowered(tflite_spec("DepthToSpace", block=node.attrs["block_size"],
                               inverse=node.op == "SpaceToDepth"), SOURCE)


def convert_space_to_batch(node: Node, ctx: LowerContext) -> Lowered:
    flat = ints(node, 2)
    pairs = tuple(tuple(flat[i:i + 2]) for i in range(0, len(flat), 2))
    block = tuple(ints(node, 1))
    if node.op == "SpaceToBatchND":
        return Lowered(tflite_spec("SpaceToBatch", block=block, pads=pairs), SOURCE)
    return Lowered(tflite_spec("BatchToSpace", block=block, crops=pairs), SOURCE)


CONVERTERS = {
    "Reshape": convert_reshape,
    "Squeeze": convert_squeeze,
    "ExpandDims": convert_expand_dims,
    "Transpose": convert_transpose,
    "ConcatV2": convert_concat,
    "Pack": convert_pack,
    "Unpack": convert_unpack,
    "Split": convert_split,
    "SplitV": convert_split_v,
    "StridedSlice": convert_strided_slice,
    "Slice": convert_slice,
    "GatherV2": convert_gather,
    "Tile": convert_tile,
    "Pad": convert_pad,
    "PadV2": convert_pad,
    "MirrorPad": convert_pad,
    "DepthToSpace": convert_depth_to_space,
    "SpaceToDepth": convert_depth_to_space,
    "SpaceToBatchND": convert_space_to_batch,
    "BatchToSpaceND": convert_space_to_batch,
}
