"""Chains of tf2torch's oneDNN convolutions kept in oneDNN's blocked layout (nChw16c on
AVX-512, nChw8c on AVX2) between layers, instead of channels-last.

oneDNN's depthwise and 1×1 kernels are faster on blocked activations at large batches: a
batch of 32 through Keras' MobileNetV2's convolutions took 0.78-0.87× the NHWC time on an
AMD EPYC (BENCHMARKS.md), and no reorder is paid between two blocked layers. A tensor
enters the layout once (`to_blocked`) and leaves it once for every reader that is not one
of these convolutions (`from_blocked`: the classifier, a max pool, a channel pad). What
means the same on the blocks stays there (`_twin`): element-wise activations, a channel gate's
global pool and product; the last global pool too, so only its values go back.

Runs after `native_convs.convs_to_native`, on its `torch.ops.tf2torch.conv` nodes.
"""

from __future__ import annotations

import operator

import torch
from torch import fx

from tf2torch.packages.reversal import shape_or_none

aten = torch.ops.aten
AVX512_BLOCK, AVX2_BLOCK = 16, 8
# Element-wise ops with constant arguments, taken on the blocks as they are: each maps a
# finite value to a bounded or finite one, so a block's padded channels stay finite, and
# the next convolution's zero weights there keep them out of every real channel. (An op
# that could overflow, such as exp, would make them infinite: 0 × inf is NaN.)
_ELEMENTWISE = {
    aten.relu.default, aten.relu6.default, aten.hardtanh.default, aten.clamp.default,
    aten.leaky_relu.default, aten.elu.default, aten.gelu.default, aten.hardswish.default,
    aten.hardsigmoid.default, aten.sigmoid.default, aten.tanh.default, aten.silu.default,
    aten.mish.default}


def block_for_this_cpu() -> int | None:
    """The channel block oneDNN's kernels use on this CPU, or None where there is none."""
    capability = torch.backends.cpu.get_cpu_capability()
    if capability.startswith("AVX512"):
        return AVX512_BLOCK
    if capability == "AVX2":
        return AVX2_BLOCK
    return None


def convs_blocked(module: fx.GraphModule, block: int) -> int:
    """Turn the `tf2torch.conv` nodes of `module` into `tf2torch.conv_blocked` in place, with
    reorders only where a tensor enters or leaves the layout; returns how many. A layer that
    oneDNN would run blocked only with its reference code (ten times slower: a few channels
    per group, a depthwise multiplier) stays channels-last."""
    ops = torch.ops.tf2torch
    graph = module.graph
    blocked_of: dict[fx.Node, fx.Node] = {}  # a channels-last value -> its blocked twin

    def blocked(value: fx.Node, before: fx.Node) -> fx.Node:
        if value not in blocked_of:
            with graph.inserting_before(before):
                blocked_of[value] = graph.call_function(ops.to_blocked.default, (value, block))
        return blocked_of[value]

    count = 0
    pooled: dict[fx.Node, tuple[fx.Node, str]] = {}  # a pool's [N, C] or [N, 1, 1, C] view
    for node in list(graph.nodes):
        if node.op != "call_function":
            continue
        if node.target is not ops.conv.default:
            _twin(graph, node, blocked_of, pooled)
            continue
        x, weight, bias, stride, padding, dilation, groups, act, residual = node.args
        kernel = operator.attrgetter(weight.target)(module)
        out_channels, per_group = kernel.shape[:2]
        # a few input channels (an image's 3) stay channels-last rather than padded to a block
        plain_input = groups == 1 and per_group < block and x not in blocked_of
        shape = shape_or_none(x)
        if shape is None or not all(isinstance(d, int) for d in shape[1:]) or ops.blocked_kernel(
                kernel, [1, *shape[1:]], stride, padding, dilation, groups, plain_input,
                block).startswith("ref"):
            continue  # only oneDNN's slow reference code takes it blocked: it stays as it is
        source = x if plain_input else blocked(x, node)
        added = None if residual is None else blocked(residual, node)
        with graph.inserting_before(node):
            conv = graph.call_function(ops.conv_blocked.default, (
                source, weight, bias, stride, padding, dilation, groups, act, added, block))
            back = graph.call_function(ops.from_blocked.default, (conv, out_channels))
        back.meta.update(node.meta)
        node.replace_all_uses_with(back)
        graph.erase_node(node)
        blocked_of[back] = conv
        count += 1
    if count:
        graph.eliminate_dead_code()  # the reorders back that only convolutions read
        graph.lint()
        module.recompile()
    return count


def _twin(graph: fx.Graph, node: fx.Node, blocked_of: dict[fx.Node, fx.Node],
          pooled: dict[fx.Node, tuple[fx.Node, str]]) -> None:
    """Give `node` a blocked twin where it reads blocked values and means the same on the
    blocked layout: an element-wise activation (`_ELEMENTWISE`), a channel gate (SE: the
    global pool, then a product or sum with a per-channel tensor), a global pool
    (`_pool`). A block's padded channels stay finite, and the convolutions' padded weights
    are zero, so what these leave in them reaches no real channel."""
    target, args = node.target, node.args
    twin = None
    if target in _ELEMENTWISE and args and args[0] in blocked_of and all(
            not isinstance(a, fx.Node) for a in (*args[1:], *node.kwargs.values())):
        with graph.inserting_before(node):
            twin = graph.call_function(target, (blocked_of[args[0]], *args[1:]), node.kwargs)
    elif target in (aten.mul.Tensor, aten.add.Tensor) and not node.kwargs and len(args) == 2:
        left, right = args
        if (left in blocked_of and right in blocked_of
                and _broadcasts(shape_or_none(left), shape_or_none(right))):
            with graph.inserting_before(node):
                twin = graph.call_function(target, (blocked_of[left], blocked_of[right]))
    elif (target is aten.mean.dim and args[0] in blocked_of and _is_spatial(args[1])
          and shape_or_none(args[0]) is not None):
        _pool(graph, node, blocked_of, pooled)
    elif target in (aten.reshape.default, aten.view.default) and args[0] in pooled:
        values, _ = pooled[args[0]]
        shape = shape_or_none(node)
        if shape is not None and len(shape) == 4 and shape[2:] == (1, 1):
            twin = values
        elif shape is not None and len(shape) == 4 and shape[1:3] == (1, 1):
            pooled[node] = (values, "nhwc")
    elif (target is aten.permute.default and args[0] in pooled
          and pooled[args[0]][1] == "nhwc" and list(args[1]) == [0, 3, 1, 2]):
        twin = pooled[args[0]][0]
    if twin is not None:
        blocked_of[node] = twin


def _pool(graph: fx.Graph, node: fx.Node, blocked_of: dict[fx.Node, fx.Node],
          pooled: dict[fx.Node, tuple[fx.Node, str]]) -> None:
    """A global average pool taken on the blocks, and only its values reordered back for
    readers that want them plain: reordering a whole 32×1280×7×7 map back first took longer
    than the pool."""
    source = node.args[0]
    keep = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
    with graph.inserting_before(node):
        values = graph.call_function(aten.mean.dim, (blocked_of[source], [2, 3], True))
        plain = graph.call_function(torch.ops.tf2torch.from_blocked.default,
                                    (values, shape_or_none(source)[1]))
        if not keep:
            plain = graph.call_function(aten.flatten.using_ints, (plain, 1))
    plain.meta.update(node.meta)
    node.replace_all_uses_with(plain)
    graph.erase_node(node)
    if keep:
        blocked_of[plain] = values
    else:
        pooled[plain] = (values, "nc")


def _is_spatial(dims: object) -> bool:
    return isinstance(dims, list | tuple) and sorted(d % 4 for d in dims) == [2, 3]


def _broadcasts(a: tuple | None, b: tuple | None) -> bool:
    """Two NCHW shapes of the same channels whose other sizes match or are 1."""
    return (a is not None and b is not None and len(a) == len(b) == 4 and a[1] == b[1]
            and all(x == y or 1 in (x, y) for i, (x, y) in enumerate(zip(a, b, strict=True)) if i != 1))


