"""Preprocessing layers that are part of the model: Rescaling, Normalization, Resizing."""

from __future__ import annotations

import numpy as np

from tf2torch.conversion.graph.keras.common import source_axis
from tf2torch.conversion.graph.registry import ANY, CF, SOURCE, Binding, LowerContext, Lowered, ModuleSpec
from tf2torch.errors import UnsupportedError
from tf2torch.sources.ir import Node


def convert_rescaling(node: Node, ctx: LowerContext) -> Lowered:
    """x · scale + offset; per-channel lists broadcast on the last source axis."""
    scale, offset = node.attrs.get("scale", 1.0), node.attrs.get("offset", 0.0)
    if isinstance(scale, int | float) and isinstance(offset, int | float):
        return Lowered(ModuleSpec("Affine", {"scale": float(scale), "offset": float(offset)}),
                       ANY)
    scale = np.broadcast_to(np.asarray(scale, np.float64), np.shape(offset) or np.shape(scale))
    offset = np.broadcast_to(np.asarray(offset, np.float64), scale.shape)
    spec = ModuleSpec("Affine", {"scale": scale.ravel().tolist(),
                                 "offset": offset.ravel().tolist(), "shape": (-1,)})
    return Lowered(spec, SOURCE)


def _normalization_axes(node: Node, rank: int) -> tuple[int, ...]:
    axis = node.attrs.get("axis", -1)
    if axis is None:
        return ()
    axes = axis if isinstance(axis, list | tuple) else [axis]
    return tuple(sorted(source_axis(int(a), rank) for a in axes))


def convert_normalization(node: Node, ctx: LowerContext) -> Lowered:
    """(x - mean) / max(sqrt(var), 1e-7) with statistics from the config or the weights."""
    rank = ctx.rank
    axes = _normalization_axes(node, rank)
    channel_only = rank >= 3 and axes == (rank - 1,)
    layout = CF if channel_only else SOURCE
    shape = [1] * rank
    for axis in axes:
        shape[1 if channel_only else axis] = ctx.input_shapes[0][axis - 1]
    spec = ModuleSpec("Standardize", {"shape": tuple(shape),
                                      "invert": bool(node.attrs.get("invert", False))})
    size = int(np.prod(shape))
    if node.attrs.get("mean") is not None:
        mean = np.broadcast_to(np.asarray(node.attrs["mean"], np.float32).ravel(), (size,))
        var = np.broadcast_to(np.asarray(node.attrs["variance"], np.float32).ravel(), (size,))
        bindings = (Binding("mean", value=mean.tolist()), Binding("variance", value=var.tolist()))
        ignored = {role: "statistics given in the config" for role in ("mean", "variance", "count")
                   if ctx.has_weight(role)}
        return Lowered(spec, layout, bindings, ignored)
    bindings = (Binding("mean", "mean", "flatten"), Binding("variance", "variance", "flatten"))
    return Lowered(spec, layout, bindings, {"count": "only used by adapt()"})


def convert_resizing(node: Node, ctx: LowerContext) -> Lowered:
    """Resizing to (height, width), bilinear or nearest, TF half-pixel centres."""
    if node.attrs.get("crop_to_aspect_ratio") or node.attrs.get("pad_to_aspect_ratio"):
        raise UnsupportedError(f"{node.name}: crop/pad to aspect ratio is not supported")
    mode = str(node.attrs.get("interpolation", "bilinear"))
    if mode not in ("bilinear", "nearest"):
        raise UnsupportedError(f"{node.name}: interpolation={mode!r} is not supported")
    size = (int(node.attrs["height"]), int(node.attrs["width"]))
    return Lowered(ModuleSpec("Resize", {"mode": mode, "size": size}), CF)
