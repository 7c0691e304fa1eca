"""Convolutions handed to tf2torch's own oneDNN op (`native_ops.py`), with what follows them
fused: a zero pad before, the residual add and the activation after.

The graph is the single-image program's (`single_image.py`, plan `onednn-cached`): an aten
`conv2d` is taken when its weight is a constant of the program and its input float32 and
4-D; any other stays an ATen convolution. Arguments and pads are read as `reversal.py`
reads them for the other single-image passes. What is fused is matched on the graph, so it is exactly what the
network computes: a residual is added only where the convolution's one use is an `add` of a
tensor of the output's shape, an activation only where it is the one use of what it follows.

Swish (`silu`) is fused only where the CPU lacks AVX-512. On AVX-512 (AMD EPYC, Zen 4),
oneDNN 3.2's swish post-op cost more than the layer's own convolution, and more than a
separate pass over its output: a 1×1 16→96 layer on 112×112 took 215 µs, 554 with swish
fused, while ATen's `silu` after it took 255. Left to Inductor, swish made Keras'
EfficientNetB0 take 0.93× the time at batch 1 and 0.91× at batch 32. Limited to AVX2
(oneDNN and Inductor both), the same CPU ran the fused swish faster: 0.97× the time at
batch 1, 0.92× at batch 32 (BENCHMARKS.md, fourteenth session). Sigmoid stays fused
everywhere: fused, it cost less than apart at every size measured.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import fx

from tf2torch.packages.reversal import (
    PADS,
    Refused,
    arg,
    conv2d_settings,
    only_user,
    pad_value,
    pads_by_dim,
    shape_or_none,
)

aten = torch.ops.aten
# in place too (`nn.ReLU6(inplace=True)`, as the slim MobileNetV2 writes it): fused only as the
# one use of what it follows, so nothing else sees the tensor it overwrote
_ACTIVATIONS = {aten.relu.default: "relu", aten.silu.default: "silu",
                aten.sigmoid.default: "sigmoid", aten.relu_.default: "relu",
                aten.silu_.default: "silu", aten.sigmoid_.default: "sigmoid",
                aten.relu6.default: "relu6"}  # (TFLite's RELU6, as converted)
_HARDTANH = (aten.hardtanh.default, aten.hardtanh_.default)
_CLAMP = (aten.clamp.default, aten.clamp_.default)


def silu_fused_here() -> bool:
    """Whether swish is fused into the op on this CPU (the module's docstring says why)."""
    return not torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def convs_to_native(module: fx.GraphModule, fuse_silu: bool | None = None) -> int:
    """Swap the convolutions `module` holds as constants for `torch.ops.tf2torch.conv`
    (loaded by the caller) in place; returns how many. `fuse_silu` defaults to this CPU's
    choice (`silu_fused_here`)."""
    if fuse_silu is None:
        fuse_silu = silu_fused_here()
    count = 0
    for node in list(module.graph.nodes):
        if (node.op == "call_function" and node.target is aten.conv2d.default
                and _swap(module, node, fuse_silu)):
            count += 1
    if count:
        module.graph.eliminate_dead_code()
        module.graph.lint()
        module.recompile()
    return count


def _swap(module: fx.GraphModule, conv: fx.Node, fuse_silu: bool) -> bool:
    x, weight, bias, stride, padding, dilation, groups = _conv_params(conv)
    x, padding = _fold_pad(x, padding)  # (a pad the mirroring wrote has no recorded value)
    if not (_is_constant(module, weight) and (bias is None or _is_constant(module, bias))
            and _is_float_4d(x)):
        return False
    last, residual, chain = conv, None, [conv]
    add = only_user(conv)
    if add is not None and add.target == aten.add.Tensor and add.kwargs.get("alpha", 1) == 1:
        other = add.args[1] if add.args[0] is conv else add.args[0]
        if (isinstance(other, fx.Node) and other is not conv and _is_float_4d(other)
                and shape_or_none(other) == shape_or_none(conv)):
            last, residual = add, other
            chain.append(add)
    act = "none"
    follower = only_user(last)
    if follower is not None:
        act = _activation(follower)
        if act == "silu" and not fuse_silu:
            act = "none"
        if act != "none":
            last = follower
            chain.append(follower)
    with module.graph.inserting_before(last):
        fused = module.graph.call_function(torch.ops.tf2torch.conv.default, (
            x, weight, bias, stride, padding, dilation, groups, act, residual))
    fused.meta.update(last.meta)
    last.replace_all_uses_with(fused)
    # erased here: dead-code elimination keeps an in-place activation, and so what it reads
    for node in reversed(chain):
        if not node.users:
            module.graph.erase_node(node)
    return True


def _conv_params(node: fx.Node) -> tuple:
    """(x, weight, bias, stride, [top, left, bottom, right], dilation, groups) of a conv2d."""
    stride, (ph, pw), dilation, groups = conv2d_settings(node)
    return (node.args[0], node.args[1], arg(node, 2, "bias", None), stride, [ph, pw, ph, pw],
            dilation, groups)


def _fold_pad(x: fx.Node, padding: list[int]) -> tuple[fx.Node, list[int]]:
    """A zero pad of height and width whose only use is this convolution, folded in."""
    if not (x.op == "call_function" and x.target in PADS and len(x.users) == 1):
        return x, padding
    try:
        if pad_value(x) != 0:
            return x, padding
    except Refused:  # reflect or replicate padding
        return x, padding
    by_dim = pads_by_dim(arg(x, 1, "pad", []), 4)
    (top, bottom), (left, right) = by_dim.get(2, (0, 0)), by_dim.get(3, (0, 0))
    if set(by_dim) - {2, 3} or min(top, bottom, left, right) < 0:  # channels padded, a crop
        return x, padding
    return x.args[0], [padding[0] + top, padding[1] + left, padding[2] + bottom,
                       padding[3] + right]


def _activation(node: fx.Node) -> str:
    if node.op != "call_function":
        return "none"
    if node.target in _ACTIVATIONS:
        return _ACTIVATIONS[node.target]
    if node.target in _HARDTANH:
        low, high = arg(node, 1, "min_val", -1.0), arg(node, 2, "max_val", 1.0)
    elif node.target in _CLAMP:
        low, high = arg(node, 1, "min", None), arg(node, 2, "max", None)
    else:
        return "none"
    if not all(isinstance(v, int | float) for v in (low, high)):
        return "none"
    return "relu6" if (low, high) == (0, 6) else f"clip:{float(low)!r}:{float(high)!r}"


def _is_constant(module: fx.GraphModule, node: Any) -> bool:
    return isinstance(node, fx.Node) and node.op == "get_attr" and isinstance(
        operator.attrgetter(node.target)(module), torch.Tensor)


def _is_float_4d(node: Any) -> bool:
    value = node.meta.get("val") if isinstance(node, fx.Node) else None
    return isinstance(value, torch.Tensor) and value.dim() == 4 and value.dtype == torch.float32
