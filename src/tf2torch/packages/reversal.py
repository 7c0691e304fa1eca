"""Which dimensions of each tensor a program holds reversed, proved op by op.

`reversals(gm, inputs)` walks an exported program's aten graph (shapes in
`node.meta["val"]`) with the placeholders named in `inputs` reversed along the listed
dimensions, and gives each node the set of dimensions its value holds reversed. An op not
known to commute with that reversal — a slice or resize of a reversed dimension, a flatten
mixing it with an unreversed one (a detection head's anchors) — gets its inputs flipped
back first; a pool whose windows do not mirror onto themselves refuses the mirroring
(`Refused`). Used by `mirror.py`; the rules are the facts below, nothing learned by running
the program.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import fx

aten = torch.ops.aten

Reversed = frozenset[int]

# ops that act on each element (or broadcast tensors element by element)
_ELEMENTWISE = {getattr(aten, name).default for name in (
    "relu", "relu_", "hardtanh", "hardtanh_", "silu", "silu_", "sigmoid", "sigmoid_", "tanh",
    "hardswish", "hardswish_", "hardsigmoid", "gelu", "elu", "leaky_relu", "exp", "sqrt",
    "rsqrt", "neg", "abs", "dropout", "clone", "contiguous", "alias", "detach", "_to_copy",
    "clamp", "reciprocal", "erf", "log", "maximum", "minimum", "clamp_min", "clamp_max",
    "relu6", "hardsigmoid_", "sign", "floor", "ceil", "round", "log_sigmoid", "softplus")} | {
    getattr(aten, name).Tensor for name in ("add", "sub", "mul", "div", "rsub")} | {
    aten.add.Scalar, aten.mul.Scalar, aten.sub.Scalar, aten.div.Scalar, aten.clamp.Tensor,
    aten.pow.Tensor_Scalar, aten.pow.Tensor_Tensor, aten.where.self}
_RESHAPES = {aten.view.default, aten.reshape.default, aten.flatten.using_ints,
             aten.unsqueeze.default, aten.squeeze.dim, aten.squeeze.dims,
             aten._unsafe_view.default}
CONVS = {aten.conv1d.default, aten.conv2d.default, aten.conv3d.default}
_POOLS = {aten.max_pool2d.default, aten.avg_pool2d.default}
PADS = {aten.pad.default, aten.constant_pad_nd.default}
_SIZES = {aten.sym_size.int, aten.sym_numel.default}  # a flip keeps every size
_REDUCTIONS = {aten.mean.dim, aten.sum.dim_IntList, aten.amax.default}


class Refused(Exception):
    """An op the mirroring cannot prove it commutes with."""


def shape_of(node: fx.Node) -> tuple:
    value = node.meta.get("val")
    if not isinstance(value, torch.Tensor):
        raise Refused(f"{node.name}: no tensor shape")
    return tuple(value.shape)


def shape_or_none(node: object) -> tuple | None:
    """A node's example tensor shape; None for a constant or a node with no tensor (the
    graph passes' reader, where `shape_of` refuses)."""
    value = node.meta.get("val") if isinstance(node, fx.Node) else None
    return tuple(value.shape) if isinstance(value, torch.Tensor) else None


def only_user(node: fx.Node) -> fx.Node | None:
    """The one node that reads `node`, or None where there are none or several."""
    return next(iter(node.users)) if len(node.users) == 1 else None


def size_of(size) -> int:
    """A dimension's size, a symbolic one (the batch) by its example value."""
    if isinstance(size, int):
        return size
    from torch.fx.experimental.symbolic_shapes import optimization_hint
    return optimization_hint(size, fallback=2)


def _live(reversed_dims: Iterable[int], shape: tuple) -> Reversed:
    """Drop dimensions of size 1: reversing them changes nothing."""
    return frozenset(d for d in reversed_dims if size_of(shape[d]) != 1)


@dataclass(frozen=True)
class Window:
    """One spatial dimension of a sliding window: input length, kernel span, stride, and the
    padding (before, after) in the coordinates the window reads."""

    length: int
    span: int
    stride: int
    before: int
    after: int

    @property
    def outputs(self) -> int:
        return (self.length + self.before + self.after - self.span) // self.stride + 1

    @property
    def used_after(self) -> int:
        """Padding after the input that some window position actually reads (may be < 0:
        trailing input rows no window reaches)."""
        last = (self.outputs - 1) * self.stride - self.before + self.span - 1
        return last - (self.length - 1)

    def mirrored(self) -> Window:
        return Window(self.length, self.span, self.stride, self.used_after, self.before)

    def trimmed(self) -> Window:
        return Window(self.length, self.span, self.stride, self.before, self.used_after)

    def symmetric(self) -> int | None:
        """The symmetric padding that reads exactly these windows, if there is one."""
        wide = Window(self.length, self.span, self.stride, self.before, self.before)
        fits = self.before >= 0 and self.used_after <= self.before
        return self.before if fits and wide.outputs == self.outputs else None


def pads_by_dim(pad: Sequence[int], rank: int) -> dict[int, tuple[int, int]]:
    """F.pad's last-dimension-first list → {dim: (before, after)}."""
    return {rank - 1 - i: (pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)}


def pad_value(node: fx.Node) -> float:
    if node.target is aten.constant_pad_nd.default:
        return node.args[2] if len(node.args) > 2 else node.kwargs.get("value", 0.0)
    mode = node.args[2] if len(node.args) > 2 else node.kwargs.get("mode", "constant")
    if mode != "constant":
        raise Refused(f"{node.name}: {mode} padding")
    value = node.args[3] if len(node.args) > 3 else node.kwargs.get("value")
    return 0.0 if value is None else value


def arg(node: fx.Node, index: int, name: str, default):
    return node.args[index] if len(node.args) > index else node.kwargs.get(name, default)


def listed(value, count: int) -> list[int]:
    values = list(value) if isinstance(value, list | tuple) else [value]
    return values * count if len(values) == 1 else values


def conv_layer_name(node: fx.Node) -> str:
    """The name of the module a convolution node was traced in (the innermost one), else its
    weight's attribute: how packing reports layers and how plans name them."""
    stack = node.meta.get("nn_module_stack")
    if stack:
        return str(list(stack.values())[-1][0])
    return str(node.args[1].target)


def conv2d_settings(node: fx.Node) -> tuple[list[int], list[int], list[int], int]:
    """An `aten.conv2d` node's stride, padding and dilation (two values each) and groups."""
    return (listed(arg(node, 3, "stride", 1), 2), listed(arg(node, 4, "padding", 0), 2),
            listed(arg(node, 5, "dilation", 1), 2), arg(node, 6, "groups", 1))


# --- which dimensions each tensor holds reversed ------------------------------------------

def _regroup(source: tuple, target: tuple, reversed_dims: Reversed) -> Reversed:
    """A reshape's reversed dimensions: each run of source dimensions merged or split into a
    run of target ones must be reversed throughout or not at all (H and W reversed together
    are the reversed H·W)."""
    src = [(d, size_of(s)) for d, s in enumerate(source) if size_of(s) != 1]
    dst = [(d, size_of(s)) for d, s in enumerate(target) if size_of(s) != 1]
    out: set[int] = set()
    i = j = 0
    while i < len(src) and j < len(dst):
        group_src, group_dst = [src[i]], [dst[j]]
        left, right = src[i][1], dst[j][1]
        i, j = i + 1, j + 1
        while left != right:
            if left < right and i < len(src):
                group_src.append(src[i])
                left, i = left * src[i][1], i + 1
            elif right < left and j < len(dst):
                group_dst.append(dst[j])
                right, j = right * dst[j][1], j + 1
            else:
                raise Refused("a reshape the mirroring cannot follow")
        flags = {d in reversed_dims for d, _ in group_src}
        if len(flags) > 1:
            raise Refused("a reshape merging reversed with unreversed dimensions")
        if flags.pop():
            out.update(d for d, _ in group_dst)
    if i < len(src) or j < len(dst):
        raise Refused("a reshape the mirroring cannot follow")
    return frozenset(out)


def _broadcast(node: fx.Node, rev: dict[fx.Node, Reversed]) -> Reversed:
    out_shape = shape_of(node)
    state: dict[int, bool] = {}
    for arg in node.all_input_nodes:
        shape = shape_of(arg)
        offset = len(out_shape) - len(shape)
        for d, size in enumerate(shape):
            if size_of(size) == 1:
                continue
            flag = d in rev[arg]
            if state.setdefault(d + offset, flag) != flag:
                raise Refused(f"{node.name}: combines a reversed tensor with an unreversed one")
    return frozenset(d for d, flag in state.items() if flag)


def _spatial_only(node: fx.Node, reversed_dims: Reversed) -> None:
    if any(d < 2 for d in reversed_dims):
        raise Refused(f"{node.name}: reversed batch or channel dimension")


def _window_op(node: fx.Node, rev: dict[fx.Node, Reversed]) -> Reversed:
    """Convolutions (any padding: the plan re-pads them) and pools (only where the windows
    mirror onto themselves: their padding is fixed and symmetric)."""
    x = node.args[0]
    _spatial_only(node, rev[x])
    if node.target in CONVS:
        if rev[x] and node.args[1].op != "get_attr":
            raise Refused(f"{node.name}: a convolution with a computed weight")
        return rev[x]
    if arg(node, 5 if node.target is aten.max_pool2d.default else 4, "ceil_mode", False):
        raise Refused(f"{node.name}: ceil_mode")
    kernel = listed(node.args[1], 2)
    stride = listed(arg(node, 2, "stride", []) or kernel, 2)
    padding = listed(arg(node, 3, "padding", 0), 2)
    dilation = listed(arg(node, 4, "dilation", 1), 2) \
        if node.target is aten.max_pool2d.default else [1, 1]
    shape = shape_of(x)
    for i, d in enumerate((2, 3)):
        window = Window(size_of(shape[d]), (kernel[i] - 1) * dilation[i] + 1, stride[i],
                        padding[i], padding[i])
        if d in rev[x] and window.used_after != window.before:
            raise Refused(f"{node.name}: a pool whose windows do not mirror")
    return rev[x]


def _matmul(node: fx.Node, rev: dict[fx.Node, Reversed]) -> Reversed:
    a, b = node.args[:2]
    rank = len(shape_of(node))
    if len(shape_of(a)) != rank or len(shape_of(b)) != rank:
        raise Refused(f"{node.name}: a broadcast matrix product")
    ra, rb = rev[a], rev[b]
    if rank - 1 in ra or rank - 2 in rb:
        raise Refused(f"{node.name}: a matrix product over a reversed dimension")
    for d in range(rank - 2):
        if (d in ra) != (d in rb) and 1 not in (size_of(shape_of(a)[d]), size_of(shape_of(b)[d])):
            raise Refused(f"{node.name}: a reversed batch against an unreversed one")
    return frozenset(ra | rb)


def _reduction(node: fx.Node, rev: dict[fx.Node, Reversed]) -> Reversed:
    x = node.args[0]
    rank = len(shape_of(x))
    dims = {d % rank for d in (arg(node, 1, "dim", None) or range(rank))}  # none: all
    if arg(node, 2, "keepdim", False):
        return rev[x] - dims
    kept = [d for d in range(rank) if d not in dims]
    return frozenset(kept.index(d) for d in rev[x] - dims)


def _along(node: fx.Node, reversed_dims: Reversed, dim: int) -> Reversed:
    if dim % len(shape_of(node)) in reversed_dims:
        raise Refused(f"{node.name}: works along a reversed dimension")
    return reversed_dims


def _rule(node: fx.Node, rev: dict[fx.Node, Reversed]) -> Reversed:
    target = node.target
    if not any(rev[a] for a in node.all_input_nodes):
        return frozenset()  # nothing reversed goes in, nothing reversed comes out
    if target in _ELEMENTWISE:
        return _broadcast(node, rev)
    x = node.args[0]
    if target in _RESHAPES:
        return _regroup(shape_of(x), shape_of(node), rev[x])
    if target is aten.permute.default:
        return frozenset(i for i, d in enumerate(node.args[1]) if d % len(node.args[1]) in rev[x])
    if target is aten.transpose.int:
        rank = len(shape_of(x))
        swap = {node.args[1] % rank: node.args[2] % rank, node.args[2] % rank: node.args[1] % rank}
        return frozenset(swap.get(d, d) for d in rev[x])
    if target in CONVS or target in _POOLS:
        return _window_op(node, rev)
    if target in PADS:  # a constant pad mirrors by swapping its amounts before and after
        pad_value(node)
        return rev[x]
    if target in {aten.bmm.default, aten.mm.default, aten.matmul.default}:
        return _matmul(node, rev)
    if target is aten.linear.default:
        return _along(node, rev[x], -1)
    if target in _REDUCTIONS:
        return _reduction(node, rev)
    if target in {aten.softmax.int, aten._softmax.default, aten.log_softmax.int,
                  aten._log_softmax.default}:
        return _along(node, rev[x], node.args[1])
    if target is aten.adaptive_avg_pool2d.default and list(node.args[1]) == [1, 1]:
        rank = len(shape_of(x))
        return rev[x] - {rank - 2, rank - 1}
    if target is aten.cat.default:
        sets = {rev[t] for t in x}
        if len(sets) > 1:
            raise Refused(f"{node.name}: concatenates reversed with unreversed tensors")
        return _along(node, sets.pop(), arg(node, 1, "dim", 0))
    raise Refused(f"{node.name}: {target} is not known to commute with mirroring")


@dataclass
class Reversals:
    """Each node's reversed dimensions, and the inputs to flip back before the ops that
    do not commute with the reversal (`restore`: op → its reversed inputs)."""

    dims: dict[fx.Node, Reversed]
    restore: dict[fx.Node, list[fx.Node]]


def reversals(gm: fx.GraphModule, inputs: dict[str, Sequence[int]]) -> Reversals:
    """Each node's reversed dimensions when the placeholders named in `inputs` hold their
    listed dimensions reversed. An op not known to commute gets its inputs flipped back
    (its result is then unreversed); raises `Refused` where that cannot be done either:
    a window op (the plan rewrites its input), or one that writes into its input."""
    rev: dict[fx.Node, Reversed] = {}
    restore: dict[fx.Node, list[fx.Node]] = {}
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            rev[node] = _live(inputs.get(node.name, ()), shape_of(node))
        elif node.op == "get_attr":
            rev[node] = frozenset()
        elif node.op == "call_function":
            try:
                rev[node] = _live(_rule(node, rev), shape_of(node)) \
                    if isinstance(node.meta.get("val"), torch.Tensor) else _no_tensor(node, rev)
            except Refused:
                schema = getattr(node.target, "_schema", None)
                if node.target in CONVS | _POOLS or schema is None or schema.is_mutable:
                    raise
                restore[node] = [a for a in node.all_input_nodes if rev[a]]
                rev[node] = frozenset()
        elif node.op != "output":
            raise Refused(f"{node.name}: {node.op}")
    return Reversals(rev, restore)


def _no_tensor(node: fx.Node, rev: dict[fx.Node, Reversed]) -> Reversed:
    if node.target not in _SIZES and any(rev[arg] for arg in node.all_input_nodes):
        raise Refused(f"{node.name}: a non-tensor result from a reversed tensor")
    return frozenset()
