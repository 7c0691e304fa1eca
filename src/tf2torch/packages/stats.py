"""Size figures for the model card: parameters (multiply-adds: `conversion.macs`)."""

from __future__ import annotations

from torch import nn


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
