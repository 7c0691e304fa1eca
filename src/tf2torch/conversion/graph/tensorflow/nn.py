"""Converters of TF's layer ops: convolutions, pooling, batch norm, bias, matrix products,
softmax and resizing. Image ops honour `data_format`: NHWC runs channels-first inside (CF),
NCHW is channels-first already (SOURCE)."""

from __future__ import annotations

from tf2torch.conversion.graph import modules as shared
from tf2torch.conversion.graph.registry import CF, SOURCE, Binding, LowerContext, Lowered, ModuleSpec
from tf2torch.conversion.graph.tensorflow.common import (
    axis_in,
    channels_first,
    follow_layout,
    ints,
    rank,
    role,
    tf_spec,
    tflite_spec,
    value,
    weight,
)
from tf2torch.sources.ir import Node


def _image_axes(node: Node, ctx: LowerContext) -> tuple[list[int], int, str]:
    """Spatial axes and channel axis of the input (batch included), and the module layout."""
    r = rank(ctx)
    if channels_first(node):
        return list(range(2, r)), 1, SOURCE
    return list(range(1, r - 1)), r - 1, CF


def _dim(ctx: LowerContext, axis: int) -> int:
    return ctx.input_shapes[0][axis - 1]


def _padding(node: Node, ctx: LowerContext, spatial: list[int], kernel: tuple,
             stride: tuple, dilation: tuple):
    """"valid", static (before, after) pairs, or "same" resolved at run time."""
    padding = node.attrs.get("padding", "VALID")
    if padding == "VALID":
        return "valid"
    if padding == "EXPLICIT":
        pads = node.attrs["explicit_paddings"]
        return [[pads[2 * a], pads[2 * a + 1]] for a in spatial]
    if not ctx.static:
        return "same"
    return [list(shared.same_pads(_dim(ctx, a), k, s, d))
            for a, k, s, d in zip(spatial, kernel, stride, dilation, strict=True)]


def _conv(node: Node, ctx: LowerContext, depthwise: bool) -> Lowered:
    spatial, channel, layout = _image_axes(node, ctx)
    filt = weight(node, 1, "filter")
    shape = ctx.weight_shape(filt)
    kernel = tuple(shape[:-2])
    strides, dilations = node.attrs.get("strides"), node.attrs.get("dilations")
    stride = tuple(strides[a] for a in spatial) if strides else (1,) * len(spatial)
    dilation = tuple(dilations[a] for a in spatial) if dilations else (1,) * len(spatial)
    in_ch = _dim(ctx, channel)
    if depthwise:
        out_ch, groups, transform = shape[-2] * shape[-1], in_ch, "depthwise_kernel"
    else:
        out_ch, groups, transform = shape[-1], in_ch // shape[-2], "conv_kernel"
    module = ModuleSpec("Conv", dict(
        rank=len(spatial), in_channels=in_ch, out_channels=out_ch, kernel_size=kernel,
        stride=stride, dilation=dilation, groups=groups, bias=False,
        padding=_padding(node, ctx, spatial, kernel, stride, dilation)))
    return Lowered(module, layout, (Binding("conv.weight", filt, transform),))


def convert_conv(node: Node, ctx: LowerContext) -> Lowered:
    """Conv2D / Conv3D (explicit padding, dilations, groups)."""
    return _conv(node, ctx, depthwise=False)


def convert_depthwise_conv(node: Node, ctx: LowerContext) -> Lowered:
    return _conv(node, ctx, depthwise=True)


def convert_conv_transpose(node: Node, ctx: LowerContext) -> Lowered:
    """Conv2DBackpropInput: inputs (output size, filter, x); SAME crops as TF pads."""
    if channels_first(node) or node.attrs.get("padding") == "EXPLICIT":
        raise ValueError("only NHWC with SAME or VALID padding is converted")
    if any(d != 1 for d in node.attrs.get("dilations") or [1]):
        raise ValueError("dilated transposed convolutions are not converted")
    filt = weight(node, 1, "filter")
    kh, kw, out_ch, in_ch = ctx.weight_shape(filt)
    size = value(node, 0)[1:3]
    if None in size:
        raise ValueError("the output size must be static")
    strides = node.attrs["strides"]
    module = tflite_spec("TransposeConv2d", in_channels=in_ch, out_channels=out_ch,
                         kernel_size=(kh, kw), stride=(strides[1], strides[2]), bias=False,
                         padding=node.attrs["padding"].lower(), out_size=tuple(size))
    return Lowered(module, CF, (Binding("conv.weight", filt, "conv_kernel"),))


def _pool(kind: str):
    def convert(node: Node, ctx: LowerContext) -> Lowered:
        spatial, _, layout = _image_axes(node, ctx)
        ksize, strides = node.attrs["ksize"], node.attrs["strides"]
        module = ModuleSpec("Pool", dict(
            kind=kind, pool_size=tuple(ksize[a] for a in spatial),
            strides=tuple(strides[a] for a in spatial),
            padding="same" if node.attrs.get("padding") == "SAME" else "valid"))
        return Lowered(module, layout)

    convert.__name__ = f"convert_{kind}_pool"
    return convert


def convert_fused_batch_norm(node: Node, ctx: LowerContext) -> Lowered:
    if node.attrs.get("is_training", False):
        raise ValueError("is_training=True (batch statistics) is not converted; export the "
                         "graph for inference")
    _, channel, layout = _image_axes(node, ctx)
    scale, offset, mean, variance = (weight(node, p, n) for p, n in (
        (1, "scale"), (2, "offset"), (3, "mean"), (4, "variance")))
    module = ModuleSpec("BatchNorm", dict(channels=_dim(ctx, channel), axis=1,
                                          eps=float(node.attrs.get("epsilon", 1e-3)),
                                          scale=True, center=True))
    return Lowered(module, layout, (Binding("weight", scale), Binding("bias", offset),
                                    Binding("running_mean", mean),
                                    Binding("running_var", variance)))


def convert_bias_add(node: Node, ctx: LowerContext) -> Lowered:
    bias = weight(node, 1, "bias")
    layout = follow_layout(ctx)
    r = rank(ctx)
    axis = 1 if channels_first(node) else axis_in(-1, r, layout)
    return Lowered(tf_spec("BiasAdd", channels=ctx.weight_shape(bias)[0], axis=axis), layout,
                   (Binding("bias", bias),))


def _constants(node: Node, ctx: LowerContext, positions: range) -> tuple[dict, tuple]:
    shapes, bindings = {}, []
    for pos in positions:
        name = role(node, pos)
        if name is not None:
            shapes[str(pos)] = list(ctx.weight_shape(name))
            bindings.append(Binding(f"const{pos}", name))
    return shapes, tuple(bindings)


def convert_matmul(node: Node, ctx: LowerContext) -> Lowered:
    """MatMul / BatchMatMulV2/V3; a stored right operand becomes a Linear layer."""
    ta = bool(node.attrs.get("transpose_a", node.attrs.get("adj_x", False)))
    tb = bool(node.attrs.get("transpose_b", node.attrs.get("adj_y", False)))
    right, left = role(node, 1), role(node, 0)
    if right and not left and not ta and len(ctx.weight_shape(right)) == 2:
        rows, cols = ctx.weight_shape(right)
        in_f, out_f = (cols, rows) if tb else (rows, cols)
        module = ModuleSpec("Linear", dict(in_features=in_f, out_features=out_f, bias=False))
        return Lowered(module, SOURCE,
                       (Binding("weight", right, "identity" if tb else "dense_kernel"),))
    shapes, bindings = _constants(node, ctx, range(2))
    return Lowered(tf_spec("MatMul", transpose_a=ta, transpose_b=tb,
                           const_shapes=shapes or None), SOURCE, bindings)


def convert_einsum(node: Node, ctx: LowerContext) -> Lowered:
    count = len(node.attrs["operands"])
    shapes, bindings = _constants(node, ctx, range(count))
    equation = node.attrs["equation"].replace(" ", "")
    return Lowered(tf_spec("Einsum", equation=equation, const_shapes=shapes or None), SOURCE,
                   bindings)


def _softmax(log: bool):
    def convert(node: Node, ctx: LowerContext) -> Lowered:
        layout = follow_layout(ctx)
        return Lowered(tflite_spec("Softmax", axis=axis_in(-1, rank(ctx), layout), log=log),
                       layout)

    convert.__name__ = "convert_log_softmax" if log else "convert_softmax"
    return convert


def _resize(mode: str):
    def convert(node: Node, ctx: LowerContext) -> Lowered:
        module = tflite_spec("Resize", mode=mode, size=tuple(ints(node, 1)),
                             align_corners=bool(node.attrs.get("align_corners", False)),
                             half_pixel_centers=bool(node.attrs.get("half_pixel_centers",
                                                                    False)))
        return Lowered(module, CF)

    convert.__name__ = f"convert_resize_{mode}"
    return convert


CONVERTERS = {
    "Conv2D": convert_conv,
    "Conv3D": convert_conv,
    "DepthwiseConv2dNative": convert_depthwise_conv,
    "Conv2DBackpropInput": convert_conv_transpose,
    "MaxPool": _pool("max"),
    "AvgPool": _pool("avg"),
    "MaxPool3D": _pool("max"),
    "AvgPool3D": _pool("avg"),
    "FusedBatchNorm": convert_fused_batch_norm,
    "FusedBatchNormV2": convert_fused_batch_norm,
    "FusedBatchNormV3": convert_fused_batch_norm,
    "BiasAdd": convert_bias_add,
    "MatMul": convert_matmul,
    "BatchMatMul": convert_matmul,
    "BatchMatMulV2": convert_matmul,
    "BatchMatMulV3": convert_matmul,
    "Einsum": convert_einsum,
    "Softmax": _softmax(False),
    "LogSoftmax": _softmax(True),
    "ResizeBilinear": _resize("bilinear"),
    "ResizeNearestNeighbor": _resize("nearest"),
}
