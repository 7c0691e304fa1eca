"""BatchNormalization, LayerNormalization and ConvNeXt's LayerScale."""

from __future__ import annotations

from tf2torch.conversion.graph.keras.common import axis_in_layout, prefer_cf, single_axis, source_axis
from tf2torch.conversion.graph.registry import SOURCE, Binding, LowerContext, Lowered, ModuleSpec
from tf2torch.sources.ir import Node


def convert_batch_norm(node: Node, ctx: LowerContext) -> Lowered:
    """BatchNormalization over any single axis, epsilon from the config (Keras: 1e-3)."""
    axis = single_axis(node)
    layout = prefer_cf(ctx, axis)
    if layout == SOURCE and ctx.rank >= 3 and source_axis(axis, ctx.rank) == ctx.rank - 1:
        layout = "cf"  # channel axis: F.batch_norm's fast path wants it at dim 1
    scale, center = ctx.has_weight("gamma"), ctx.has_weight("beta")
    spec = ModuleSpec("BatchNorm", {
        "channels": ctx.weight_shape("moving_mean")[0],
        "axis": axis_in_layout(axis, ctx.rank, layout),
        "eps": float(node.attrs.get("epsilon", 1e-3)), "scale": scale, "center": center,
    })
    bindings = (Binding("running_mean", "moving_mean"), Binding("running_var", "moving_variance"),
                *_affine(scale, center))
    return Lowered(spec, layout, bindings)


def convert_layer_norm(node: Node, ctx: LowerContext) -> Lowered:
    """LayerNormalization over any axes (source layout), optional RMS scaling."""
    axes = node.attrs.get("axis", -1)
    axes = axes if isinstance(axes, list | tuple) else [axes]
    axes = tuple(sorted(source_axis(int(a), ctx.rank) for a in axes))
    scale, center = ctx.has_weight("gamma"), ctx.has_weight("beta")
    param_shape = tuple(ctx.input_shapes[0][a - 1] for a in axes)
    spec = ModuleSpec("LayerNorm", {
        "param_shape": param_shape, "axes": axes,
        "eps": float(node.attrs.get("epsilon", 1e-3)), "scale": scale, "center": center,
        "rms_scaling": bool(node.attrs.get("rms_scaling", False)),
    })
    return Lowered(spec, SOURCE, _affine(scale, center))


def _affine(scale: bool, center: bool) -> tuple[Binding, ...]:
    """gamma → weight and beta → bias, for those the layer has (scale=, center=)."""
    return ((Binding("weight", "gamma"),) if scale else ()) + \
        ((Binding("bias", "beta"),) if center else ())


def convert_layer_scale(node: Node, ctx: LowerContext) -> Lowered:
    """ConvNeXt LayerScale: x · gamma on the channel axis, in whichever layout x is."""
    layout = prefer_cf(ctx, -1)
    role = "gamma" if ctx.has_weight("gamma") else "variable"  # legacy .h5 names it so
    spec = ModuleSpec("ChannelScale", {
        "channels": ctx.weight_shape(role)[0],
        "axis": axis_in_layout(-1, ctx.rank, layout),
    })
    return Lowered(spec, layout, (Binding("gamma", role),))
