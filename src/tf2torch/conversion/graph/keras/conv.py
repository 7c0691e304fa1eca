"""Convolution layers: Conv1D/2D/3D, DepthwiseConv, SeparableConv, ConvTranspose."""

from __future__ import annotations

from tf2torch.conversion.graph.keras.common import activation, check_channels_last, ntuple, spatial_rank
from tf2torch.conversion.graph.modules import same_pads
from tf2torch.conversion.graph.registry import CF, Binding, LowerContext, Lowered, ModuleSpec
from tf2torch.errors import UnsupportedError
from tf2torch.sources.ir import Node


def resolve_padding(
    node: Node, ctx: LowerContext, kernel: tuple, strides: tuple, dilation: tuple,
):
    """"valid"/"causal" as is; SAME as static (before, after) pairs when they do not depend
    on the input size (stride 1) or the size is known, else "same" for the run-time path."""
    padding = str(node.attrs.get("padding", "valid")).lower()
    if padding in ("valid", "causal"):
        return padding
    if padding != "same":
        raise UnsupportedError(f"{node.name}: padding={padding!r}")
    sizes = ctx.input_shapes[0][:-1]
    if all(s == 1 for s in strides):
        return [same_pads(1, k, 1, d) for k, d in zip(kernel, dilation, strict=True)]
    if ctx.static:
        return [same_pads(n, k, s, d) for n, k, s, d in zip(sizes, kernel, strides, dilation,
                                                            strict=True)]
    return "same"


def _geometry(node: Node, rank: int) -> tuple[tuple, tuple, tuple]:
    kernel = ntuple(node.attrs["kernel_size"], rank)
    strides = ntuple(node.attrs.get("strides", 1), rank)
    dilation = ntuple(node.attrs.get("dilation_rate", 1), rank)
    if any(s > 1 for s in strides) and any(d > 1 for d in dilation):
        raise UnsupportedError(f"{node.name}: strides > 1 with dilation > 1 (Keras refuses it too)")
    return kernel, strides, dilation


def _bias(node: Node, ctx: LowerContext, param: str) -> tuple[Binding, ...]:
    return (Binding(param, "bias"),) if ctx.has_weight("bias") else ()


def convert_conv(node: Node, ctx: LowerContext) -> Lowered:
    """Conv1D/2D/3D with groups, dilation and same/valid/causal padding."""
    check_channels_last(node)
    rank = spatial_rank(node, ctx)
    kernel, strides, dilation = _geometry(node, rank)
    weight = ctx.weight_shape("kernel")
    groups = int(node.attrs.get("groups", 1))
    spec = ModuleSpec("Conv", {
        "rank": rank, "in_channels": weight[-2] * groups, "out_channels": weight[-1],
        "kernel_size": kernel, "stride": strides, "dilation": dilation, "groups": groups,
        "bias": ctx.has_weight("bias"),
        "padding": resolve_padding(node, ctx, kernel, strides, dilation),
        "activation": activation(node, ctx),
    })
    bindings = (Binding("conv.weight", "kernel", "conv_kernel"), *_bias(node, ctx, "conv.bias"))
    return Lowered(spec, CF, bindings)


def convert_depthwise_conv(node: Node, ctx: LowerContext) -> Lowered:
    """DepthwiseConv1D/2D: a grouped conv with groups = channels, depth multiplier M."""
    check_channels_last(node)
    rank = spatial_rank(node, ctx)
    kernel, strides, dilation = _geometry(node, rank)
    role = "depthwise_kernel" if ctx.has_weight("depthwise_kernel") else "kernel"
    *_, channels, multiplier = ctx.weight_shape(role)
    spec = ModuleSpec("Conv", {
        "rank": rank, "in_channels": channels, "out_channels": channels * multiplier,
        "kernel_size": kernel, "stride": strides, "dilation": dilation, "groups": channels,
        "bias": ctx.has_weight("bias"),
        "padding": resolve_padding(node, ctx, kernel, strides, dilation),
        "activation": activation(node, ctx),
    })
    bindings = (Binding("conv.weight", role, "depthwise_kernel"), *_bias(node, ctx, "conv.bias"))
    return Lowered(spec, CF, bindings)


def convert_separable_conv(node: Node, ctx: LowerContext) -> Lowered:
    """SeparableConv1D/2D: depthwise (with the layer's padding) then pointwise + bias."""
    check_channels_last(node)
    rank = spatial_rank(node, ctx)
    kernel, strides, dilation = _geometry(node, rank)
    *_, channels, multiplier = ctx.weight_shape("depthwise_kernel")
    spec = ModuleSpec("SeparableConv", {
        "rank": rank, "in_channels": channels, "depth_multiplier": multiplier,
        "out_channels": ctx.weight_shape("pointwise_kernel")[-1], "kernel_size": kernel,
        "stride": strides, "dilation": dilation, "bias": ctx.has_weight("bias"),
        "padding": resolve_padding(node, ctx, kernel, strides, dilation),
        "activation": activation(node, ctx),
    })
    bindings = (
        Binding("depthwise.conv.weight", "depthwise_kernel", "depthwise_kernel"),
        Binding("pointwise.conv.weight", "pointwise_kernel", "conv_kernel"),
        *_bias(node, ctx, "pointwise.conv.bias"),
    )
    return Lowered(spec, CF, bindings)


def convert_conv_transpose(node: Node, ctx: LowerContext) -> Lowered:
    """Conv1DTranspose/Conv2DTranspose/Conv3DTranspose with TF's SAME cropping."""
    check_channels_last(node)
    if node.attrs.get("output_padding") is not None:
        raise UnsupportedError(f"{node.name}: output_padding is not supported")
    rank = spatial_rank(node, ctx)
    kernel, strides, dilation = _geometry(node, rank)
    padding = str(node.attrs.get("padding", "valid")).lower()
    *_, out_channels, in_channels = ctx.weight_shape("kernel")
    spec = ModuleSpec("ConvTranspose", {
        "rank": rank, "in_channels": in_channels, "out_channels": out_channels,
        "kernel_size": kernel, "stride": strides, "dilation": dilation,
        "bias": ctx.has_weight("bias"), "padding": padding,
        "activation": activation(node, ctx),
    })
    bindings = (Binding("conv.weight", "kernel", "conv_kernel"), *_bias(node, ctx, "conv.bias"))
    return Lowered(spec, CF, bindings)
