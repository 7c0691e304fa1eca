"""An inference form of a converted network: BatchNorm folded, channels-last, optionally compiled.

Measured on MobileNetV2-1.4/224 with 2 threads (see `benchmarks/inference.py`): folding BN
removes a full read and write of every activation, channels-last lets oneDNN run the
depthwise and 1×1 convolutions without layout reorders, and `configure_allocator` stops
glibc from returning the large activation buffers to the kernel after every layer.

How many threads a forward pass uses, and how its idle threads wait, follows one rule for
the whole project (`tf2torch.util.threads`): the form returned here sets the thread count
before every call (`Governed`).
"""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_conv_bn_weights

from tf2torch.conversion.graph.modules.conv import Conv as GraphConv
from tf2torch.conversion.graph.modules.normalization import BatchNorm as GraphBatchNorm
from tf2torch.conversion.zoo.mobilenet_v2 import ConvBN
from tf2torch.packages import native_ops
from tf2torch.util.threads import ThreadGovernor

log = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
# Above any activation of the zoo's networks at batch 32 (1.4/224: 32×96×112×112×4 ≈ 154 MB),
# and inside the int range mallopt takes.
_BIG = 1 << 30


class InferenceForm(nn.Module):
    """The folded network, its NCHW input re-laid channels-last; outputs unchanged.

    Graph-converted nets that take NHWC already get channels-last memory for free: their
    internal NHWC→NCHW permute is a view of exactly that layout, so their input is left alone.
    """

    def __init__(self, net: nn.Module, relayout_input: bool) -> None:
        super().__init__()
        self.net = net
        self.relayout_input = relayout_input

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.relayout_input and len(inputs) == 1 and inputs[0].dim() == 4:
            inputs = (inputs[0].contiguous(memory_format=torch.channels_last),)
        return self.net(*inputs)


class Governed(nn.Module):
    """Sets the thread count its `governor` chooses, then runs `net`: outside any compiled
    code, since the choice changes from call to call. Where the governor may share single
    images out in bands (a program calling tf2torch's op), it also tells the op its helpers."""

    def __init__(self, net: nn.Module, governor: ThreadGovernor) -> None:
        super().__init__()
        self.net = net
        self.governor = governor
        self._helpers: tuple[int, ...] = ()

    def forward(self, *inputs: torch.Tensor) -> Any:
        self.governor.apply()
        if self.governor.helpers != self._helpers:
            self._helpers = self.governor.helpers
            native_ops.share_rows(self._helpers, self.governor.bands)
        return self.net(*inputs)


DEFAULT_UNKNOWN_DIM = 224  # as verification uses for spatial sizes a file leaves open


def input_shapes(card: Any) -> list[tuple[int, ...]]:
    """One sample's shape per input, as the package's net takes them."""
    graph = card.config.get("graph") or {}
    if len(graph.get("inputs", [])) > 1:
        nchw = card.config.get("layout", "nhwc") == "nchw"
        shapes = [tuple(d or DEFAULT_UNKNOWN_DIM for d in i["shape"]) for i in graph["inputs"]]
        return [(s[-1], *s[:-1]) if nchw and len(s) == 3 else s for s in shapes]
    return [tuple(card.input["shape"])]


def inference_form(net: nn.Module, sample_shape: Sequence[int], channels_last: bool = True,
                   compile: bool = False, input_layout: str = "nchw", governed: bool = True,
                   threads: int | None = None, share: int = 1) -> nn.Module:
    """An eval-mode copy of `net` for inference; `net` itself is left untouched.

    `sample_shape` is one input's shape (C, H, W) or a batch's, in `input_layout` ("nchw",
    or "nhwc" for graph-converted nets keeping the source interface); it is run once so a compiled
    form is traced (and a broken one fails) here rather than at the first user call.
    `governed` wraps the result in `Governed`, choosing the thread count before each call
    by `tf2torch.util.threads` (`threads`: the user's own choice; `share`: forward passes
    run at once); `governed=False` returns the bare form (for export and compilation).
    """
    folded = fold_batchnorm(copy.deepcopy(net).eval())
    if channels_last:
        folded = folded.to(memory_format=torch.channels_last)
    form: nn.Module = InferenceForm(folded, channels_last and input_layout == "nchw").eval()
    for p in form.parameters():
        p.requires_grad_(False)
    if compile:
        # freezing: weights become constants, so Inductor folds them and hands oneDNN
        # prepacked conv weights; ResNet50 at batch 1 went from 75 to 53 ms with it here
        # (only under no_grad/inference_mode; with grad enabled the frozen graph is not used)
        form = torch.compile(form, dynamic=False, options={"freezing": True})
    if governed:
        form = Governed(form, ThreadGovernor(threads, share))
    shape = tuple(sample_shape) if len(sample_shape) == 4 else (1, *sample_shape)
    if compile or governed:  # oneDNN's first-call set-up (and compilation) happen now
        with torch.inference_mode():
            form(torch.zeros(shape))
    return form


def fold_batchnorm(net: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm into the convolution feeding it, in place; returns `net`.

    Known units (the zoo's `ConvBN`, `nn.Sequential` pairs) are folded by structure; what is
    left is folded on a `torch.fx` trace when the module traces, else kept as it is. A
    graph-converted net is its own fx graph of Keras-style layers: its `Conv` (with no
    activation of its own) → `BatchNorm` over channels pairs fold there (52 in Keras'
    MobileNetV2), for the eager inference form and the compiled one alike.
    """
    count = _fold_known_units(net)
    if any(isinstance(m, nn.BatchNorm2d | GraphBatchNorm) for m in net.modules()):
        net, traced = _fold_with_fx(net)
        count += traced
    log.debug("folded %d BatchNorm layers", count)
    return net


def _fold_known_units(module: nn.Module) -> int:
    count = 0
    for child in module.children():
        count += _fold_known_units(child)
    if isinstance(module, ConvBN) and isinstance(module.bn, nn.BatchNorm2d):
        module.conv = fuse_conv_bn_eval(module.conv, module.bn)
        module.bn = nn.Identity()
        count += 1
    elif isinstance(module, nn.Sequential):
        count += _fold_sequential(module)
    return count


def _fold_sequential(seq: nn.Sequential) -> int:
    names = list(seq._modules)
    count = 0
    for first, second in itertools.pairwise(names):
        conv, bn = seq._modules[first], seq._modules[second]
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            seq._modules[first] = fuse_conv_bn_eval(conv, bn)
            seq._modules[second] = nn.Identity()
            count += 1
    return count


def _fold_with_fx(net: nn.Module) -> tuple[nn.Module, int]:
    """Conv → BatchNorm edges of an fx graph, where the conv feeds nothing else."""
    try:  # a graph-converted net is already one, at the level of its layers
        graph_module = net if isinstance(net, fx.GraphModule) else fx.symbolic_trace(net)
    except Exception as exc:  # data-dependent control flow: fx cannot see through it
        log.debug("fx trace failed (%s); remaining BatchNorm layers kept", exc)
        return net, 0
    modules = dict(graph_module.named_modules())
    count = 0
    for node in list(graph_module.graph.nodes):
        conv_node = node.args[0] if node.op == "call_module" and node.args else None
        if not _is_conv_bn(node, conv_node, modules):
            continue
        fused = _fused(modules[conv_node.target], modules[node.target])
        _replace_submodule(graph_module, conv_node.target, fused)
        node.replace_all_uses_with(conv_node)
        graph_module.graph.erase_node(node)
        count += 1
    graph_module.graph.lint()
    graph_module.delete_all_unused_submodules()
    graph_module.recompile()
    return graph_module, count


def _is_conv_bn(node: fx.Node, conv_node: object, modules: dict[str, nn.Module]) -> bool:
    if not (isinstance(conv_node, fx.Node) and conv_node.op == "call_module"
            and len(conv_node.users) == 1 and len(node.args) == 1 and not node.kwargs):
        return False
    conv, bn = modules.get(conv_node.target), modules.get(node.target)
    if isinstance(bn, nn.BatchNorm2d):
        return isinstance(conv, nn.Conv2d)
    # a graph Conv's activation would sit between the two; axis 1: over its channels
    return (isinstance(bn, GraphBatchNorm) and bn.axis == 1 and isinstance(conv, GraphConv)
            and conv.activation == "linear" and isinstance(conv.conv, nn.modules.conv._ConvNd)
            and not conv.conv.transposed and conv.conv.out_channels == bn.running_mean.numel())


def _fused(conv: nn.Module, bn: nn.Module) -> nn.Module:
    if isinstance(bn, nn.BatchNorm2d):
        return fuse_conv_bn_eval(conv, bn)
    inner = conv.conv
    ones, zeros = torch.ones_like(bn.running_mean), torch.zeros_like(bn.running_mean)
    weight, bias = fuse_conv_bn_weights(
        inner.weight, inner.bias, bn.running_mean, bn.running_var, bn.eps,
        bn.weight if bn.weight is not None else ones, bn.bias if bn.bias is not None else zeros)
    folded = copy.deepcopy(conv)
    folded.conv.weight, folded.conv.bias = weight, bias
    return folded


def _replace_submodule(root: nn.Module, target: str, module: nn.Module) -> None:
    parent_name, _, name = target.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, name, module)


@dataclass(frozen=True)
class AllocatorSetup:
    """What `configure_allocator` changed (empty `settings` when nothing could be set)."""

    library: str | None
    settings: dict[str, int]


def configure_allocator(mmap_threshold: int = _BIG, trim_threshold: int = _BIG,
                        arena_max: int | None = None) -> AllocatorSetup:
    """Make glibc malloc keep large freed blocks for reuse instead of unmapping them.

    By default glibc serves blocks above a (dynamic, at most 32 MiB) threshold with `mmap`
    and gives them back with `munmap` on free; a batch-32 forward then faults in fresh zeroed
    pages for every activation of every layer, and page faults cost as much CPU as the
    convolutions. Raising M_MMAP_THRESHOLD keeps those blocks in the heap, and raising
    M_TRIM_THRESHOLD stops the heap top from being trimmed back after each forward, so the
    second forward reuses the first one's pages. The cost: the process keeps its peak heap.
    Works in-process, at any time (the `MALLOC_*_` environment variables only act at start).
    A no-op on other C libraries (macOS, Windows, musl).
    """
    libc = _glibc()
    if libc is None:
        return AllocatorSetup(None, {})
    wanted = {"M_MMAP_THRESHOLD": (_M_MMAP_THRESHOLD, mmap_threshold),
              "M_TRIM_THRESHOLD": (_M_TRIM_THRESHOLD, trim_threshold)}
    if arena_max is not None:
        wanted["M_ARENA_MAX"] = (_M_ARENA_MAX, arena_max)
    done = {name: value for name, (param, value) in wanted.items() if libc.mallopt(param, value)}
    return AllocatorSetup("glibc", done)


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - raises AttributeError off glibc
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc
