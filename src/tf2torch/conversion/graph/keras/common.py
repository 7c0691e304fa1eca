"""Helpers shared by the Keras layer converters: config normalisation, axes, activations."""

from __future__ import annotations

from typing import Any

from tf2torch.conversion.graph.registry import CF, SOURCE, LowerContext
from tf2torch.errors import UnsupportedError
from tf2torch.sources.ir import Node

# Keras activation names → names in `modules.ELEMENTWISE` (plus softmax/log_softmax).
_ACTIVATION_ALIASES = {
    "swish": "silu",
    "hard_silu": "hard_swish",
    "None": "linear",
}
_ACTIVATIONS = {
    "linear", "relu", "relu6", "sigmoid", "hard_sigmoid", "hard_swish", "tanh", "silu", "gelu",
    "elu", "selu", "softplus", "softsign", "exponential", "softmax", "log_softmax", "mish",
    "leaky_relu",
}


def keras_major(ctx: LowerContext) -> int:
    version = str(ctx.meta.get("keras_version", "3"))
    return int(version.split(".")[0]) if version[:1].isdigit() else 3


def activation(node: Node, ctx: LowerContext, value: Any = None) -> str:
    """Canonical activation name of `value` (default: the node's `activation`)."""
    value = node.attrs.get("activation", "linear") if value is None else value
    if isinstance(value, dict):  # Keras 3 may serialise activations as objects
        value = value.get("config", value.get("class_name"))
        if isinstance(value, dict):
            value = value.get("name")
    name = _ACTIVATION_ALIASES.get(str(value), str(value))
    if name not in _ACTIVATIONS:
        raise UnsupportedError(f"{node.name}: activation {value!r} is not supported")
    if name == "hard_sigmoid" and keras_major(ctx) < 3:
        return "hard_sigmoid_keras2"
    return name


def ntuple(value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, int | float):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    return value * n if len(value) == 1 else value


def check_channels_last(node: Node) -> None:
    if node.attrs.get("data_format", "channels_last") not in ("channels_last", None):
        raise UnsupportedError(f"{node.name}: data_format={node.attrs['data_format']!r}; "
                               "only channels_last is supported")


def source_axis(axis: int, rank: int) -> int:
    """A Keras axis (batch included, possibly negative) as a non-negative index."""
    if not -rank <= axis < rank:
        raise UnsupportedError(f"axis {axis} out of range for rank {rank}")
    return axis % rank


def axis_in_layout(axis: int, rank: int, layout: str) -> int:
    """Where source axis `axis` sits in a tensor of `layout`."""
    axis = source_axis(axis, rank)
    if layout != CF or rank < 3 or axis == 0:
        return axis
    return 1 if axis == rank - 1 else axis + 1


def prefer_cf(ctx: LowerContext, axis: int) -> str:
    """CF if the op acts on the channel axis of an image-like input already in CF."""
    rank = ctx.rank
    if rank >= 3 and source_axis(axis, rank) == rank - 1 and ctx.input_layouts[0] == CF:
        return CF
    return SOURCE


def single_axis(node: Node, key: str = "axis", default: int = -1) -> int:
    axis = node.attrs.get(key, default)
    if isinstance(axis, list | tuple):
        if len(axis) != 1:
            raise UnsupportedError(f"{node.name}: {key}={axis} (several axes) is not supported")
        axis = axis[0]
    return int(axis)


def spatial_rank(node: Node, ctx: LowerContext) -> int:
    rank = ctx.rank - 2
    if rank < 1:
        raise UnsupportedError(f"{node.name}: input of rank {ctx.rank} has no spatial axes")
    return rank
