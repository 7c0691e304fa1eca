"""Converters of custom ops that published TFLite vision models use (MediaPipe's)."""

from __future__ import annotations

import struct

from tf2torch.conversion.graph.registry import CF, Binding, LowerContext, Lowered
from tf2torch.conversion.graph.tflite import mediapipe_ops, transforms
from tf2torch.conversion.graph.tflite.common import output_shape, role, spec
from tf2torch.sources.ir import Node

# TfLitePadding enum of the raw TfLiteTransposeConvParams struct MediaPipe stores.
_TFLITE_PADDING = {1: "same", 2: "valid"}


def convert_convolution_2d_transpose_bias(node: Node, ctx: LowerContext) -> Lowered:
    """MediaPipe's Convolution2DTransposeBias: TRANSPOSE_CONV with a bias, options as the raw
    struct {int32 padding, int32 stride_width, int32 stride_height}."""
    raw = bytes.fromhex(node.attrs["custom_options"])
    padding, stride_w, stride_h = struct.unpack_from("<iii", raw)
    weight = role(node, 1)
    if weight is None:
        raise ValueError("the filter must be a constant tensor")
    out_ch, kh, kw, in_ch = ctx.weight_shape(weight)
    module = spec("TransposeConv2d", in_channels=in_ch, out_channels=out_ch,
                  kernel_size=(kh, kw), stride=(stride_h, stride_w),
                  bias=role(node, 2) is not None, padding=_TFLITE_PADDING[padding],
                  out_size=tuple(output_shape(node)[1:3]))
    bindings = [Binding("conv.weight", weight, transforms.TRANSPOSE_CONV)]
    if role(node, 2):
        bindings.append(Binding("conv.bias", role(node, 2)))
    return Lowered(module, CF, tuple(bindings))


CONVERTERS = {
    "Convolution2DTransposeBias": convert_convolution_2d_transpose_bias,
    **mediapipe_ops.CONVERTERS,
}
