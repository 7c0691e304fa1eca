"""Multiply-adds of convolutions and linear layers (the usual MAC count), from shapes.

Counted where the shapes are known without computing anything: the zoo from its
architecture table and input size, the graph path while lowering (each module already runs
once on meta tensors there to learn its output shape). `MacCounter` is that count's one
rule, applied to whatever module and output shape it is shown.
"""

from __future__ import annotations

import torch
from torch import nn

MAC_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
               nn.Linear)


def module_macs(module: nn.Module, input_shape: torch.Size, output_shape: torch.Size) -> int:
    """One sample's multiply-adds of `module` given its input's and output's shapes."""
    def per_sample(shape: torch.Size) -> int:
        return shape.numel() // shape[0] if len(shape) else 0

    if isinstance(module, nn.Linear):
        return per_sample(output_shape) * module.in_features
    if isinstance(module, nn.modules.conv._ConvNd):
        window = module.weight.shape[2:].numel()
        if module.transposed:  # each input element is spread over out/groups × window
            return per_sample(input_shape) * (module.out_channels // module.groups) * window
        # each output element sums over in/groups × window
        return per_sample(output_shape) * (module.in_channels // module.groups) * window
    return 0


class MacCounter:
    """Adds up `module_macs` of every MAC module under the modules it watches, as they run
    (on meta tensors or real ones)."""

    def __init__(self) -> None:
        self.total = 0
        self._hooks: list = []

    def watch(self, root: nn.Module) -> MacCounter:
        for module in root.modules():
            if isinstance(module, MAC_MODULES):
                self._hooks.append(module.register_forward_hook(self._count))
        return self

    def _count(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        self.total += module_macs(module, inputs[0].shape, output.shape)

    def close(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()

    def __enter__(self) -> MacCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def count_on_meta(net: nn.Module, sample_shapes: list[tuple[int, ...]]) -> int:
    """One sample's multiply-adds of `net` run on meta tensors: shapes only, no arithmetic,
    no memory (for nets whose sizes only a forward pass can tell)."""
    state = {name: torch.empty_like(t, device="meta")
             for name, t in [*net.named_parameters(), *net.named_buffers()]}
    inputs = tuple(torch.empty((1, *s), device="meta") for s in sample_shapes)
    with MacCounter().watch(net) as counter, torch.no_grad():
        torch.func.functional_call(net, state, inputs)
    return counter.total
