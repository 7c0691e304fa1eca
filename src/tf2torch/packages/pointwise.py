"""1×1 convolutions as matrix products, for the compiled single-image program.

A 1×1, stride-1 convolution over a channels-last activation is a matrix product of the
(H·W, C_in) pixels with the (C_in, C_out) weights. Compiled with frozen weights, oneDNN runs
these layers as `brgconv_1x1`, which at batch 1 and small spatial sizes reached 110-200
GFLOP/s here where MKL's sgemm reached 210-310 on the same shapes; AOTInductor hands a
`bmm` to MKL, while an `mm` or `linear` with a constant weight it packs for oneDNN again.
So the single-image program (whose H and W are fixed) gets `bmm`s: on Keras' MobileNetV2,
4.9-5.0 against 6.4-6.6 ms, one process per variant (BENCHMARKS.md). Strided 1×1 layers
stay convolutions: as products on the subsampled pixels they measured the same on
ResNet50. The any-batch program keeps the convolutions. All of this was measured on an Intel
Xeon: on an AMD EPYC, oneDNN's convolutions were the faster, so there the `onednn` plan
(`single_image.py`) makes products only of the layers oneDNN would repack per thread count,
and the `onednn-cached` plan (the default where its op builds) only of channel gates' layers
(`gate_layers`).

MKL's products also keep the program's speed independent of the thread count. Left as
oneDNN convolutions, ResNet50's 1×1 layers ran 4-6% faster at 2 threads but 2.2× slower at
1: oneDNN blocks a prepacked weight for the thread count it was compiled with, and at
another count reorders it on every call (BENCHMARKS.md, ninth session).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence

import torch
from torch import nn

# A channel gate's 1×1 layers (EfficientNetB0's largest: 1152×48) as products, which Inductor
# fuses with the gate's pool, activations and product into one kernel per gate; as
# convolutions each was a call of its own (`single_image.py`). Larger single-pixel layers,
# such as a classifier written as a 1×1 convolution (1792×1001 in the slim MobileNetV2), stay
# convolutions; not measured as products: with a 1280×1000 weight read from memory, the op
# took 123-129 µs and MKL's `linear` 293.
GATE_WEIGHTS = 1 << 16


class PointwiseMatmul(nn.Module):
    """A 1×1 stride-1 `nn.Conv2d` on one image of `height`×`width`, as a `bmm` on its
    channels-last view; takes and gives NCHW-shaped tensors like the convolution."""

    def __init__(self, conv: nn.Conv2d, height: int, width: int) -> None:
        super().__init__()
        self.height, self.width = height, width
        self.register_buffer("weight", conv.weight.detach()[:, :, 0, 0].t().contiguous()[None])
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c_in, c_out = self.weight.shape[1:]
        pixels = x.permute(0, 2, 3, 1).reshape(1, self.height * self.width, c_in)
        y = torch.bmm(pixels, self.weight)
        if self.bias is not None:
            y = y + self.bias
        return y.view(1, self.height, self.width, c_out).permute(0, 3, 1, 2)


def _is_pointwise(conv: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and conv.kernel_size == (1, 1) and conv.stride == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding == (0, 0)
            and conv.padding_mode == "zeros")


def _sizes(net: nn.Module, example: Sequence[torch.Tensor],
           only: Collection[str] | None = None) -> dict[str, set[tuple[int, int]]]:
    """The spatial sizes each 1×1 convolution of `net` (or of those `only` names) runs at on
    `example`, by name."""
    sizes: dict[str, set[tuple[int, int]]] = defaultdict(set)
    hooks = [module.register_forward_pre_hook(
        lambda _, args, name=name: sizes[name].add(tuple(args[0].shape[-2:])))
        for name, module in net.named_modules()
        if _is_pointwise(module) and (only is None or name in only)]
    try:
        with torch.no_grad():
            net(*example)
    finally:
        for hook in hooks:
            hook.remove()
    return sizes


def gate_layers(net: nn.Module, example: Sequence[torch.Tensor]) -> list[str]:
    """The 1×1 layers `net` runs on a single pixel of `example` with at most `GATE_WEIGHTS`
    weights: a channel gate's two (squeeze-and-excitation, after a global pool)."""
    modules = dict(net.named_modules())
    return sorted(name for name, seen in _sizes(net, example).items()
                  if seen == {(1, 1)} and modules[name].weight.numel() <= GATE_WEIGHTS)


def pointwise_as_matmul(net: nn.Module, example: Sequence[torch.Tensor],
                        only: Collection[str] | None = None) -> int:
    """Replace, in place, each 1×1 convolution that `net` runs at one spatial size on the
    single image `example` — or each of those `only` names (as `net.named_modules()` does)
    — by a `PointwiseMatmul` for that size; returns how many."""
    sizes = _sizes(net, example, only)
    count = 0
    for parent_name, parent in list(net.named_modules()):
        for name, child in list(parent.named_children()):
            seen = sizes.get(f"{parent_name}.{name}" if parent_name else name, set())
            if _is_pointwise(child) and len(seen) == 1:  # a shared layer at two sizes: kept
                setattr(parent, name, PointwiseMatmul(child, *next(iter(seen))))
                count += 1
    return count
