"""Size figures for the model card: parameters and multiply-adds of one forward pass."""

from __future__ import annotations

import torch
from torch import nn


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def count_multiply_adds(net: nn.Module, *sample: torch.Tensor) -> int:
    """Multiply-adds of convolutions and linear layers for one sample (the usual MAC count)."""
    total = 0

    def conv_hook(module: nn.Conv2d, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        per_output = module.weight.shape[1] * module.weight.shape[2:].numel()
        total += out.numel() // out.shape[0] * per_output

    def linear_hook(module: nn.Linear, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() // out.shape[0] * module.in_features

    hooks = []
    for module in net.modules():
        if isinstance(module, nn.Conv1d | nn.Conv2d | nn.ConvTranspose2d):
            hooks.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(linear_hook))
    try:
        with torch.inference_mode():
            net(*sample)
    finally:
        for hook in hooks:
            hook.remove()
    return total
