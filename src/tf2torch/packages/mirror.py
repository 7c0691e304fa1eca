"""TF's SAME padding without a padded copy: the compiled program runs on mirrored images.

For a stride-2 layer over an even size, TF pads only after (`same`: 0 before, 1 after;
Keras' `ZeroPadding2D(correct_pad(...))` the same by hand). PyTorch's convolutions pad
symmetrically, so the port pads explicitly: one full copy of the activation before every
such layer, 0.4-0.6 ms of a 5-7 ms MobileNetV2 at batch 1 here (BENCHMARKS.md).

Mirror an image along H and W and the padding that was all *after* lands *before*; and a
stride-2 window that starts one row early never reaches the last row, so padding before
alone is symmetric padding — which oneDNN applies inside the kernel, copying nothing. So
the compiled program flips its input once, runs every convolution with spatially flipped
kernels and its padding mirrored (`conv(flip x, flip w) = flip conv(x, w)` for the window
positions both read), and flips spatial outputs back. Every explicit zero pad before a
convolution is folded into the convolution's own padding where the two agree, mirrored or
not (Keras' `ZeroPadding2D(3)` before ResNet50's 7×7 stride-2 convolution).

The rewrite works on the exported program's aten graph (static spatial sizes) and proves
itself op by op (`reversal.py`): each tensor carries the set of dimensions it holds
reversed; an op not known to commute with that (a slice of a spatial dimension, a resize,
a detection head's reshape that mixes H with anchors) gets its inputs flipped back, and a
pool whose windows do not mirror leaves the program unmirrored. The mirrored plan is taken
only where it copies fewer elements than the plain one (pads folded, nothing flipped); a
rewrite that fails compiles the program as exported. The compiled program is then
verified against the original like any port.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import fx

from tf2torch.conversion.graph.modules.conv import pad_arg
from tf2torch.packages.reversal import (
    CONVS,
    PADS,
    Refused,
    Reversals,
    Reversed,
    Window,
    arg,
    listed,
    pad_value,
    pads_by_dim,
    reversals,
    shape_of,
    size_of,
)

log = logging.getLogger(__name__)
aten = torch.ops.aten


# --- the plan: each window op's padding, and what copies remain ----------------------------

_MAX_POOL = aten.max_pool2d.default


@dataclass
class _Plan:
    node: fx.Node  # a convolution, or a max pool that reads a pad of -inf
    source: fx.Node  # what it reads: a folded pad's input
    padding: list[int]  # symmetric, applied by the op itself
    explicit: list[int] | None  # an F.pad list where no symmetric padding reads the same
    value: float  # what that pad holds: 0, or -inf before a max pool
    flip: list[int]  # weight dimensions to reverse
    copied: int  # elements the explicit pad writes


def _foldable(pad: fx.Node) -> bool:
    """A pad of spatial dimensions only, read only by ops that pad with the same value
    themselves: zeros by convolutions, -inf by max pools (without ceil_mode)."""
    if pad.op != "call_function" or pad.target not in PADS or not pad.users:
        return False
    try:
        value = pad_value(pad)
    except Refused:  # reflect or replicate
        return False
    if len(pad.args[1]) > 2 * (len(shape_of(pad)) - 2) or value not in (0, -float("inf")):
        return False
    return all((user.target in CONVS if value == 0 else
                user.target is _MAX_POOL and not arg(user, 5, "ceil_mode", False))
               and user.args[0] is pad and pad not in user.args[1:] for user in pad.users)


def _geometry(node: fx.Node, rank: int) -> tuple[list[int], list[int], list[int]]:
    """Kernel spans (dilation included), strides and symmetric paddings of a window op."""
    n = rank - 2
    if node.target in CONVS:
        kernel = [size_of(k) for k in shape_of(node.args[1])[2:]]
        at = 3
    else:  # max_pool2d(input, kernel_size, stride=kernel_size, padding, dilation, ceil_mode)
        kernel = listed(node.args[1], n)
        at = 2
    stride = listed(arg(node, at, "stride", None) or (1 if at == 3 else kernel), n)
    padding = listed(arg(node, at + 1, "padding", 0), n)
    dilation = listed(arg(node, at + 2, "dilation", 1), n)
    return [(k - 1) * d + 1 for k, d in zip(kernel, dilation, strict=True)], stride, padding


def _plan_window(node: fx.Node, rev: dict[fx.Node, Reversed]) -> _Plan:
    x = node.args[0]
    rank = len(shape_of(x))
    folded = _foldable(x)
    source = x.args[0] if folded else x
    extra = pads_by_dim(x.args[1], rank) if folded else {}
    shape = shape_of(source)
    windows = []
    for i, (span, stride, padding) in enumerate(zip(*_geometry(node, rank), strict=True)):
        before, after = extra.get(i + 2, (0, 0))
        window = Window(size_of(shape[i + 2]), span, stride, padding + before, padding + after)
        windows.append(window.mirrored() if i + 2 in rev[source] else window.trimmed())
    symmetric = [w.symmetric() for w in windows]
    if node.target is _MAX_POOL:  # torch pads a pool by at most half its window
        symmetric = [p if p is not None and 2 * p <= w.span else None
                     for p, w in zip(symmetric, windows, strict=True)]
    flip = [d for d in range(2, rank) if d in rev[source]] if node.target in CONVS else []
    value = 0.0 if node.target in CONVS else -float("inf")
    if all(p is not None for p in symmetric):
        return _Plan(node, source, symmetric, None, value, flip, 0)
    explicit = pad_arg([(w.before, w.after) for w in windows])
    copied = math.prod(size_of(s) for s in shape[:2]) * math.prod(
        w.length + w.before + w.after for w in windows)
    return _Plan(node, source, [0] * len(windows), explicit, value, flip, copied)


def _plan(gm: fx.GraphModule, found: Reversals) -> tuple[list[_Plan], int]:
    """Every convolution's plan and every padded max pool's, and the elements that pads and
    flips still copy."""
    rev = found.dims
    plans = [_plan_window(n, rev) for n in gm.graph.nodes if n.target in CONVS
             or (n.target is _MAX_POOL and _foldable(n.args[0]))]
    folded = {plan.node.args[0] for plan in plans if plan.source is not plan.node.args[0]}
    copied = sum(plan.copied for plan in plans)
    copied += sum(_numel(n) for n in gm.graph.nodes if n.target in PADS and n not in folded)
    copied += sum(_numel(n) for n in gm.graph.nodes if n.op == "placeholder" and rev[n])
    copied += sum(_numel(n) for n in _outputs(gm) if rev[n])
    copied += sum(_numel(n) for inputs in found.restore.values() for n in inputs)
    return plans, copied


def _numel(node: fx.Node) -> int:
    return math.prod(size_of(size) for size in shape_of(node))


def _outputs(gm: fx.GraphModule) -> list[fx.Node]:
    out = next(n for n in gm.graph.nodes if n.op == "output")
    return [n for n in out.all_input_nodes if isinstance(n.meta.get("val"), torch.Tensor)]


# --- the rewrite ----------------------------------------------------------------------------

def mirror_spatially(gm: fx.GraphModule, inputs: dict[str, Sequence[int]]) -> int:
    """Rewrite `gm` (an exported program's module, shapes in `node.meta["val"]`) in place:
    explicit zero pads folded into its convolutions, and where that removes more copying,
    the program mirrored along the dimensions `inputs` names per placeholder (e.g. an NHWC
    image's 1 and 2). Returns how many explicit pads it removed."""
    plain = Reversals({n: frozenset() for n in gm.graph.nodes}, {})
    before = sum(1 for n in gm.graph.nodes if n.target in PADS)
    try:
        plans, copied = _plan(gm, plain)
    except Refused as why:  # a shape it cannot read: leave the program as it is
        log.info("pads not folded: %s", why)
        return 0
    try:
        found = reversals(gm, inputs)
        mirrored, mirrored_copied = _plan(gm, found)
        if mirrored_copied < copied:
            plans = mirrored
        else:
            log.info("not mirrored: it would copy %d elements, against %d", mirrored_copied,
                     copied)
            found = plain
    except Refused as why:
        log.info("not mirrored: %s", why)
        found = plain
    _apply(gm, found, plans)
    return before - sum(1 for n in gm.graph.nodes if n.target in PADS)


def mirrored_module(program: torch.export.ExportedProgram, layout: str) -> fx.GraphModule:
    """`program`'s module for compiling, `mirror_spatially` applied with its image inputs
    (4-D, in `layout`: "nhwc" or "nchw") mirrored along H and W."""
    gm = program.module(check_guards=False)
    dims = (1, 2) if layout == "nhwc" else (2, 3)
    images = {n.name: dims for n in gm.graph.nodes if n.op == "placeholder"
              and isinstance(n.meta.get("val"), torch.Tensor) and n.meta["val"].dim() == 4}
    try:
        log.info("%d explicit pads folded into convolutions", mirror_spatially(gm, images))
    except Exception as exc:  # a speed-up, never a reason to fail: compile the program as is
        log.warning("compiled without mirroring: %s: %s", type(exc).__name__, exc)
        return program.module(check_guards=False)
    return gm


def _apply(gm: fx.GraphModule, found: Reversals, plans: list[_Plan]) -> None:
    graph, rev = gm.graph, found.dims
    # the pads there are now (their plans are made): after becomes before where mirrored
    for node in list(graph.nodes):
        if node.target in PADS and rev[node.args[0]]:
            pads = pads_by_dim(node.args[1], len(shape_of(node)))
            flat = pad_arg([pads[d][::-1] if d in rev[node.args[0]] else pads[d]
                            for d in sorted(pads)])
            node.args = (node.args[0], flat, *node.args[2:])
    for index, plan in enumerate(plans):
        node, source = plan.node, plan.source
        with graph.inserting_before(node):
            if plan.explicit is not None:
                source = graph.call_function(aten.constant_pad_nd.default,
                                             (source, plan.explicit, plan.value))
        ones = [1] * len(plan.padding)
        if node.target is _MAX_POOL:
            kernel = listed(node.args[1], len(ones))
            node.args = (source, kernel, arg(node, 2, "stride", None) or kernel, plan.padding,
                         arg(node, 4, "dilation", ones), False)
            node.kwargs = {}
            continue
        weight = node.args[1]
        if plan.flip:
            name = f"_mirrored_weight_{index}"
            tensor = operator.attrgetter(weight.target)(gm).detach()
            gm.register_buffer(name, torch.flip(tensor, plan.flip).contiguous())
            with graph.inserting_before(node):
                weight = graph.get_attr(name)
        args = [arg(node, i, name, default) for i, (name, default) in enumerate(
            (("input", None), ("weight", None), ("bias", None), ("stride", ones),
             ("padding", None), ("dilation", ones), ("groups", 1)))]
        args[0], args[1], args[4] = source, weight, plan.padding
        node.args, node.kwargs = tuple(args), {}
    for node, inputs in found.restore.items():  # ops that do not commute: flipped back
        for value in inputs:
            with graph.inserting_before(node):
                back = graph.call_function(aten.flip.default, (value, sorted(rev[value])))
            node.replace_input_with(value, back)
    # outputs and inputs last: a plan may name an input as what a convolution reads
    out = next(n for n in graph.nodes if n.op == "output")
    for node in _outputs(gm):
        if rev[node]:
            with graph.inserting_before(out):
                back = graph.call_function(aten.flip.default, (node, sorted(rev[node])))
            out.replace_input_with(node, back)
    for node in list(graph.nodes):
        if node.op == "placeholder" and rev[node]:
            with graph.inserting_after(node):
                flipped = graph.call_function(aten.flip.default, (node, sorted(rev[node])))
            node.replace_all_uses_with(flipped)
            flipped.replace_input_with(flipped, node)
    graph.eliminate_dead_code()
    graph.lint()
    gm.recompile()
