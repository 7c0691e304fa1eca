"""Depthwise convolutions as multiply-adds Inductor fuses, in the single-image program.

A depthwise convolution does little arithmetic (9 multiply-adds per output at 3×3), and at
batch 1 oneDNN's kernel for it (`brdgmm_dw`) is the small part of the call: by
`ONEDNN_VERBOSE` it runs a 7×7×32 layer in 1 µs and a 7×7×960 one in 13 µs, while the call
around it (memory descriptors, primitive attributes and buffers, built and freed on every
call) adds ~35 µs. Keras' MobileNetV2 has 17 such layers, EfficientNetB0 16.

Written as a sum over the kernel's taps — each tap a strided slice of the channels-last
activation, zero-padded to the output's size where the window reaches past the edge, times
that tap's per-channel weights — the layer is a loop nest Inductor generates itself,
vectorised along channels and fused with its own bias and activation. (Inductor would also
inline the 1×1 layer's bias and ReLU6 into every tap's read; `compiled.py` has it write
values read more than once instead: 5-13% faster, BENCHMARKS.md.) Two details decide the
speed, both measured (BENCHMARKS.md): the weights are stored tap-major, (kh, kw, C), so
each tap's vector is one contiguous load (as (C, 1, kh, kw), every lane was a gather: 3-7×
slower than oneDNN); and each tap pads its own slice (masked loads) instead of reading
slices of one padded copy of the activation (which Inductor either recomputed per tap or
wrote out: 24-98% slower on large maps). Per layer in an AOTInductor program, 2 threads,
against oneDNN: 7×7×960 3×3 34 against 55 µs, 56×56×144 191 against 218, 112×112×96 473
against 488, 14×14×480 5×5 120 against 124. At batch 32, where oneDNN's fixed cost is
shared by 32 images, the sums lost (186 against 160 ms on Keras' MobileNetV2), so only the
single-image program gets them: all of its depthwise layers on the `mkl` plan, on the
`onednn` plan only those oneDNN would repack per thread count (`single_image.py`). These
figures are an Intel Xeon's; on an AMD EPYC oneDNN's depthwise kernel was the faster.

Works on the exported program's aten graph after `mirror.py` (it takes the symmetric
paddings as they are, and reads sizes through the explicit pads mirroring inserts).
Rewritten: 2-D convolutions with one input and one output channel per group, constant
weights and bias, static spatial sizes; everything else is left to oneDNN.
"""

from __future__ import annotations

import operator
from collections.abc import Collection
from dataclasses import dataclass

import torch
from torch import fx

from tf2torch.packages.reversal import arg, conv2d_settings, conv_layer_name, pads_by_dim

aten = torch.ops.aten


@dataclass(frozen=True)
class _Layer:
    node: fx.Node
    weight: torch.Tensor  # (C, 1, kh, kw)
    bias: fx.Node | None
    stride: list[int]
    padding: list[int]
    dilation: list[int]
    in_size: tuple[int, int]
    out_size: tuple[int, int]


def spatial_size(node: fx.Node) -> tuple[int, int] | None:
    """A 4-D node's static spatial size: from its example tensor, or for a pad `mirror.py`
    inserted (it has none), from what it pads."""
    value = node.meta.get("val")
    if isinstance(value, torch.Tensor):
        size = tuple(value.shape[2:]) if value.dim() == 4 else ()
        return size if len(size) == 2 and all(isinstance(s, int) for s in size) else None
    if node.target is aten.constant_pad_nd.default and isinstance(node.args[0], fx.Node):
        inner = spatial_size(node.args[0])
        pads = pads_by_dim(node.args[1], 4)
        if inner is not None and set(pads) <= {2, 3}:
            return tuple(n + sum(pads.get(d, (0, 0))) for d, n in enumerate(inner, 2))
    return None


def _layer(gm: fx.GraphModule, node: fx.Node) -> _Layer | None:
    """`node` read as a depthwise 2-D convolution this rewrite handles, else None."""
    if node.op != "call_function" or node.target is not aten.conv2d.default:
        return None
    source, weight, bias = node.args[0], node.args[1], arg(node, 2, "bias", None)
    if weight.op != "get_attr" or (bias is not None and bias.op != "get_attr"):
        return None
    tensor = operator.attrgetter(weight.target)(gm)
    stride, padding, dilation, groups = conv2d_settings(node)
    if groups == 1 or tensor.dim() != 4 or tuple(tensor.shape[:2]) != (groups, 1):
        return None  # a full convolution, or a depth multiplier above 1
    in_size, out_size = spatial_size(source), spatial_size(node)
    if in_size is None or out_size is None:
        return None
    return _Layer(node, tensor.detach(), bias, stride, padding, dilation, in_size, out_size)


def _tap(graph: fx.Graph, pixels: fx.Node, layer: _Layer, tap: tuple[int, int]) -> fx.Node:
    """What kernel tap `tap` reads for every output pixel, from the channels-last `pixels`:
    a strided slice, padded with zeros to the output's size where the window reaches past
    the edge."""
    pads = []
    for dim in (1, 2):
        i = dim - 1
        stride, size, out = layer.stride[i], layer.in_size[i], layer.out_size[i]
        first = tap[i] * layer.dilation[i] - layer.padding[i]  # read by output 0
        lo = min(out, max(0, -(first // stride)))  # outputs before lo read the padding
        hi = max(lo, min(out, (size - 1 - first) // stride + 1))  # as do those from hi on
        if hi > lo:
            pixels = graph.call_function(aten.slice.Tensor, (
                pixels, dim, first + lo * stride, first + (hi - 1) * stride + 1, stride))
        else:  # this tap reads only padding: a zero-sized slice, padded to the output
            pixels = graph.call_function(aten.slice.Tensor, (pixels, dim, 0, 0))
        pads.append((lo, out - hi))
    if any(before or after for before, after in pads):
        pixels = graph.call_function(aten.constant_pad_nd.default,
                                     (pixels, [0, 0, *pads[1], *pads[0]], 0.0))
    return pixels


def _rewrite(gm: fx.GraphModule, layer: _Layer, index: int) -> None:
    graph, node = gm.graph, layer.node
    name = f"_depthwise_taps_{index}"  # (kh, kw, C): each tap's weights one contiguous vector
    gm.register_buffer(name, layer.weight[:, 0].permute(1, 2, 0).contiguous())
    call = graph.call_function
    with graph.inserting_before(node):
        pixels = call(aten.permute.default, (node.args[0], [0, 2, 3, 1]))
        taps = graph.get_attr(name)
        total = layer.bias
        for i in range(layer.weight.shape[2]):
            row = call(aten.select.int, (taps, 0, i))
            for j in range(layer.weight.shape[3]):
                term = call(aten.mul.Tensor, (_tap(graph, pixels, layer, (i, j)),
                                              call(aten.select.int, (row, 0, j))))
                total = term if total is None else call(aten.add.Tensor, (total, term))
        result = call(aten.permute.default, (total, [0, 3, 1, 2]))
    node.replace_all_uses_with(result)
    graph.erase_node(node)


def depthwise_as_sums(gm: fx.GraphModule, only: Collection[str] | None = None) -> int:
    """Rewrite, in place, every depthwise 2-D convolution of `gm` (an exported program's
    module, shapes in `node.meta["val"]`) — or those whose layer `only` names
    (`reversal.conv_layer_name`) — as sums over its kernel's taps; returns how many."""
    layers = [layer for node in gm.graph.nodes if (layer := _layer(gm, node)) is not None
              and (only is None or conv_layer_name(node) in only)]
    for index, layer in enumerate(layers):
        _rewrite(gm, layer, index)
    if layers:
        gm.graph.eliminate_dead_code()
        gm.graph.lint()
        gm.recompile()
    return len(layers)
