"""Converters of TFLite's convolution, pooling, dense and resize ops (channels-first inside)."""

from __future__ import annotations

from tf2torch.conversion.graph import modules as shared
from tf2torch.conversion.graph.registry import CF, SOURCE, Binding, LowerContext, Lowered
from tf2torch.conversion.graph.tflite import transforms
from tf2torch.conversion.graph.tflite.common import output_shape, role, spec, value
from tf2torch.sources.ir import Node


def _padding(node: Node, ctx: LowerContext, kernel: tuple, stride: tuple, dilation: tuple):
    """"valid", static (before, after) pairs for a known input size, else "same"."""
    if node.attrs["padding"] == "valid":
        return "valid"
    if not ctx.static:
        return "same"
    sizes = ctx.input_shapes[0][:2]
    return [list(shared.same_pads(int(s), k, st, d))
            for s, k, st, d in zip(sizes, kernel, stride, dilation, strict=True)]


def _bias(node: Node, pos: int, param: str) -> tuple[Binding, ...]:
    bias = role(node, pos)
    return (Binding(param, bias),) if bias else ()


def _filter(node: Node) -> str:
    name = role(node, 1)
    if name is None:
        raise ValueError("the filter must be a constant tensor")
    return name


def _conv(node: Node, ctx: LowerContext, out_ch: int, kernel: tuple[int, int], groups: int,
          layout_transform: str) -> Lowered:
    """CONV_2D and DEPTHWISE_CONV_2D differ only in groups and the filter's layout."""
    in_ch = ctx.input_shapes[0][-1]
    stride = (node.attrs["stride_h"], node.attrs["stride_w"])
    dilation = (node.attrs["dilation_h_factor"], node.attrs["dilation_w_factor"])
    module = spec("Conv2d", in_channels=in_ch, out_channels=out_ch, kernel_size=kernel,
                  stride=stride, dilation=dilation, groups=groups,
                  bias=role(node, 2) is not None,
                  padding=_padding(node, ctx, kernel, stride, dilation),
                  activation=node.attrs["activation"])
    bindings = (Binding("conv.weight", _filter(node), layout_transform),
                *_bias(node, 2, "conv.bias"))
    return Lowered(module, CF, bindings)


def convert_conv_2d(node: Node, ctx: LowerContext) -> Lowered:
    out_ch, kh, kw, per_group = ctx.weight_shape(_filter(node))
    in_ch = ctx.input_shapes[0][-1]
    return _conv(node, ctx, out_ch, (kh, kw), in_ch // per_group, transforms.OHWI)


def convert_depthwise_conv_2d(node: Node, ctx: LowerContext) -> Lowered:
    _, kh, kw, out_ch = ctx.weight_shape(_filter(node))
    return _conv(node, ctx, out_ch, (kh, kw), ctx.input_shapes[0][-1], transforms.DEPTHWISE)


def convert_transpose_conv(node: Node, ctx: LowerContext) -> Lowered:
    out_ch, kh, kw, in_ch = ctx.weight_shape(_filter(node))
    shape = value(node, 0) if node.attrs["operands"][0] == "v" else output_shape(node)
    module = spec("TransposeConv2d", in_channels=in_ch, out_channels=out_ch,
                  kernel_size=(kh, kw), stride=(node.attrs["stride_h"], node.attrs["stride_w"]),
                  bias=role(node, 3) is not None, padding=node.attrs["padding"],
                  out_size=tuple(shape[1:3]), activation=node.attrs["activation"])
    bindings = (Binding("conv.weight", _filter(node), transforms.TRANSPOSE_CONV),
                *_bias(node, 3, "conv.bias"))
    return Lowered(module, CF, bindings)


def convert_fully_connected(node: Node, ctx: LowerContext) -> Lowered:
    if node.attrs.get("weights_format", 0) != 0:
        raise ValueError("shuffled (quantized) weights format")
    out_features, in_features = ctx.weight_shape(_filter(node))
    module = spec("FullyConnected", in_features=in_features, out_features=out_features,
                  bias=role(node, 2) is not None, keep_num_dims=node.attrs["keep_num_dims"],
                  activation=node.attrs["activation"])
    bindings = (Binding("weight", _filter(node)), *_bias(node, 2, "bias"))
    return Lowered(module, SOURCE, bindings)


def _pool(kind: str):
    def convert(node: Node, ctx: LowerContext) -> Lowered:
        a = node.attrs
        module = spec("Pool2d", kind=kind, pool_size=(a["filter_height"], a["filter_width"]),
                      strides=(a["stride_h"], a["stride_w"]), padding=a["padding"],
                      activation=a["activation"])
        return Lowered(module, CF)

    convert.__name__ = f"convert_{kind}_pool_2d"
    return convert


convert_max_pool_2d = _pool("max")
convert_average_pool_2d = _pool("avg")
convert_l2_pool_2d = _pool("l2")


def _resize(mode: str):
    def convert(node: Node, ctx: LowerContext) -> Lowered:
        size = value(node, 1) if node.attrs["operands"][1] == "v" else output_shape(node)[1:3]
        module = spec("Resize", mode=mode, size=tuple(size),
                      align_corners=node.attrs["align_corners"],
                      half_pixel_centers=node.attrs["half_pixel_centers"])
        return Lowered(module, CF)

    convert.__name__ = f"convert_resize_{mode}"
    return convert


convert_resize_bilinear = _resize("bilinear")
convert_resize_nearest_neighbor = _resize("nearest")

CONVERTERS = {
    "CONV_2D": convert_conv_2d,
    "DEPTHWISE_CONV_2D": convert_depthwise_conv_2d,
    "TRANSPOSE_CONV": convert_transpose_conv,
    "FULLY_CONNECTED": convert_fully_connected,
    "MAX_POOL_2D": convert_max_pool_2d,
    "AVERAGE_POOL_2D": convert_average_pool_2d,
    "L2_POOL_2D": convert_l2_pool_2d,
    "RESIZE_BILINEAR": convert_resize_bilinear,
    "RESIZE_NEAREST_NEIGHBOR": convert_resize_nearest_neighbor,
}
