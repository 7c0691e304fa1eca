"""Reshaping layers: Flatten, Reshape, Permute, RepeatVector, padding, cropping, upsampling.

Flatten/Reshape/Permute run in the source layout so elements keep Keras's order.
"""

from __future__ import annotations

from tf2torch.conversion.graph.keras.common import check_channels_last, ntuple, spatial_rank
from tf2torch.conversion.graph.registry import CF, SOURCE, LowerContext, Lowered, ModuleSpec
from tf2torch.errors import UnsupportedError
from tf2torch.sources.ir import Node


def convert_flatten(node: Node, ctx: LowerContext) -> Lowered:
    check_channels_last(node)
    return Lowered(ModuleSpec("Flatten"), SOURCE)


def convert_reshape(node: Node, ctx: LowerContext) -> Lowered:
    shape = tuple(int(d) for d in node.attrs["target_shape"])
    return Lowered(ModuleSpec("Reshape", {"shape": shape}), SOURCE)


def convert_permute(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(ModuleSpec("Permute", {"dims": tuple(int(d) for d in node.attrs["dims"])}),
                   SOURCE)


def convert_repeat_vector(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(ModuleSpec("RepeatVector", {"n": int(node.attrs["n"])}), SOURCE)


def _pairs(value, rank: int) -> list[tuple[int, int]]:
    """Keras padding/cropping: int, (a, b) per dim, or ((before, after), ...)."""
    if isinstance(value, int):
        return [(value, value)] * rank
    value = list(value)
    if rank == 1 and len(value) == 2 and all(isinstance(v, int) for v in value):
        return [(value[0], value[1])]
    pairs = []
    for item in value:
        pairs.append((item, item) if isinstance(item, int) else (int(item[0]), int(item[1])))
    return pairs


def convert_zero_padding(node: Node, ctx: LowerContext) -> Lowered:
    """ZeroPadding1D/2D/3D."""
    check_channels_last(node)
    pads = _pairs(node.attrs.get("padding", 1), spatial_rank(node, ctx))
    return Lowered(ModuleSpec("Pad", {"pads": pads}), CF)


def convert_cropping(node: Node, ctx: LowerContext) -> Lowered:
    """Cropping1D/2D/3D."""
    check_channels_last(node)
    crops = _pairs(node.attrs.get("cropping", 1), spatial_rank(node, ctx))
    return Lowered(ModuleSpec("Crop", {"crops": crops}), CF)


def convert_upsampling(node: Node, ctx: LowerContext) -> Lowered:
    """UpSampling1D/2D/3D: nearest (repeat) or bilinear with half-pixel centres."""
    check_channels_last(node)
    rank = spatial_rank(node, ctx)
    mode = str(node.attrs.get("interpolation", "nearest"))
    modes = {"nearest": "nearest", "bilinear": ("linear", "bilinear", "trilinear")[rank - 1]}
    if mode not in modes:
        raise UnsupportedError(f"{node.name}: interpolation={mode!r} is not supported")
    scale = ntuple(node.attrs.get("size", 2), rank)
    return Lowered(ModuleSpec("Resize", {"mode": modes[mode], "scale": scale}), CF)
