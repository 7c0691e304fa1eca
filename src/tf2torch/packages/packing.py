"""Which of a program's convolution weights oneDNN packs differently at another thread count.

With frozen weights, Inductor has oneDNN pack each convolution's weight once, at compile
time, into a blocked layout oneDNN picks for the layer's shapes *and the thread count of the
compiling process*. Run with another thread count, oneDNN may want another blocking and then
reorders the weight on every call. Measured here (BENCHMARKS.md, ninth session): 30 of 672
common shapes are packed differently at 1 and 2 threads; at 1 thread, with weights packed
for 2, 3×3 layers took 1.2-1.6× their time and a 1×1 256→1024 layer 19×. The thread rule
(`tf2torch.util.threads`) drops to fewer threads when other processes keep cores busy, so
`tf2torch compile` asks oneDNN, layer by layer, which blocking it would pick at each thread
count this machine allows, and says where it differs (the manifest's `one_image_repacked`).

Works on the single-image program's aten graph (static shapes) before it is compiled: the
any-batch program's weights are not packed at compile time (its batch is open), so they are
reordered on every call at any thread count.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Iterable

import torch
from torch import fx

from tf2torch.packages.depthwise import spatial_size
from tf2torch.packages.reversal import conv2d_settings, conv_layer_name
from tf2torch.util.threads import ThreadGovernor

aten = torch.ops.aten
log = logging.getLogger(__name__)


def _packing(weight: torch.Tensor, node: fx.Node, size: tuple[int, int]) -> torch.Tensor:
    """oneDNN's memory descriptor for `weight` packed as Inductor packs it, at the current
    thread count."""
    stride, padding, dilation, groups = conv2d_settings(node)
    packed = torch.ops.mkldnn._reorder_convolution_weight(
        weight, padding, stride, dilation, groups, [1, weight.shape[1] * groups, *size])
    return torch.ops.mkldnn._get_mkldnn_serialized_md(packed)


def repacked_by_thread_count(gm: fx.GraphModule, counts: Iterable[int]) -> dict[int, list[str]]:
    """For each thread count in `counts` (the current one aside), the convolutions of `gm`
    whose weight oneDNN would pack differently from the current thread count; counts where
    none would are left out."""
    own = torch.get_num_threads()
    others = sorted(set(counts) - {own})
    if not others or not torch.backends.mkldnn.is_available():
        return {}  # e.g. the compile runs at the count TF2TORCH_THREADS fixes: nothing to pack
    layers = []
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target is not aten.conv2d.default:
            continue
        weight = node.args[1]
        size = spatial_size(node.args[0])
        if weight.op != "get_attr" or size is None:
            continue
        tensor = operator.attrgetter(weight.target)(gm).detach()
        if tensor.dtype == torch.float32 and tensor.dim() == 4:
            layers.append((conv_layer_name(node), tensor, node, size))
    reference = [_packing(t, node, size) for _, t, node, size in layers]
    found: dict[int, list[str]] = {}
    try:
        for count in others:
            torch.set_num_threads(count)
            changed = [name for (name, t, node, size), ref in zip(layers, reference, strict=True)
                       if not torch.equal(_packing(t, node, size), ref)]
            if changed:
                found[count] = changed
    finally:
        torch.set_num_threads(own)
    return found


def rule_counts(most: int = 64) -> list[int]:
    """The thread counts the thread rule may pick here: the one `TF2TORCH_THREADS` fixes,
    else 1 to the usable CPUs (at most `most`)."""
    rule = ThreadGovernor()
    return [rule.fixed] if rule.fixed else list(range(1, min(rule.usable, most) + 1))


def repacked_elsewhere(gm: fx.GraphModule, most: int = 64) -> dict[str, list[str]]:
    """`repacked_by_thread_count` over the thread counts the thread rule may pick here
    (`rule_counts`), keyed by the count as text (JSON). Advice only: where oneDNN cannot
    pack a weight, it is logged and the answer is empty."""
    try:
        found = repacked_by_thread_count(gm, rule_counts(most))
    except RuntimeError as exc:
        log.warning("could not check how oneDNN packs the weights per thread count: %s", exc)
        return {}
    for count, names in found.items():
        log.warning("at %d thread(s) oneDNN repacks %d convolution weight(s) on every call "
                    "(%s); the program was compiled at %d", count, len(names),
                    ", ".join(names[:3]) + (", ..." if len(names) > 3 else ""),
                    torch.get_num_threads())
    return {str(count): names for count, names in found.items()}
