"""Pooling: Max/Average 1D/2D/3D (TF SAME semantics) and global pooling."""

from __future__ import annotations

from tf2torch.conversion.graph.keras.common import check_channels_last, ntuple, spatial_rank
from tf2torch.conversion.graph.registry import CF, LowerContext, Lowered, ModuleSpec
from tf2torch.sources.ir import Node


def _pool(kind: str):
    def convert(node: Node, ctx: LowerContext) -> Lowered:
        check_channels_last(node)
        rank = spatial_rank(node, ctx)
        size = ntuple(node.attrs.get("pool_size", 2), rank)
        strides = node.attrs.get("strides")
        spec = ModuleSpec("Pool", {
            "kind": kind, "pool_size": size,
            "strides": size if strides is None else ntuple(strides, rank),
            "padding": str(node.attrs.get("padding", "valid")).lower(),
        })
        return Lowered(spec, CF)

    convert.__name__ = convert.__qualname__ = f"convert_{kind}_pooling"
    return convert


def _global_pool(kind: str):
    def convert(node: Node, ctx: LowerContext) -> Lowered:
        check_channels_last(node)
        spec = ModuleSpec("GlobalPool", {"kind": kind,
                                         "keepdims": bool(node.attrs.get("keepdims", False))})
        return Lowered(spec, CF)

    convert.__name__ = convert.__qualname__ = f"convert_global_{kind}_pooling"
    return convert


convert_max_pooling = _pool("max")
convert_average_pooling = _pool("avg")
convert_global_max_pooling = _global_pool("max")
convert_global_average_pooling = _global_pool("avg")
