"""Dense, activation layers, and layers that are the identity at inference."""

from __future__ import annotations

from tf2torch.conversion.graph.keras.common import activation, axis_in_layout, prefer_cf, single_axis
from tf2torch.conversion.graph.registry import ANY, SOURCE, Binding, LowerContext, Lowered, ModuleSpec
from tf2torch.sources.ir import Node


def convert_dense(node: Node, ctx: LowerContext) -> Lowered:
    """Dense on the last axis of an input of any rank, fused activation included."""
    in_features, out_features = ctx.weight_shape("kernel")
    spec = ModuleSpec("Linear", {
        "in_features": in_features, "out_features": out_features,
        "bias": ctx.has_weight("bias"), "activation": activation(node, ctx),
    })
    bindings = [Binding("weight", "kernel", "dense_kernel")]
    if ctx.has_weight("bias"):
        bindings.append(Binding("bias", "bias"))
    return Lowered(spec, SOURCE, tuple(bindings))


def _softmax_like(node: Node, ctx: LowerContext, name: str, axis: int) -> Lowered:
    layout = prefer_cf(ctx, axis)
    spec = ModuleSpec("Act", {"name": name, "axis": axis_in_layout(axis, ctx.rank, layout)})
    return Lowered(spec, layout)


def convert_activation(node: Node, ctx: LowerContext) -> Lowered:
    """Activation(name): elementwise in any layout; softmax on the last source axis."""
    name = activation(node, ctx)
    if name in ("softmax", "log_softmax"):
        return _softmax_like(node, ctx, name, -1)
    return Lowered(ModuleSpec("Act", {"name": name}), ANY)


def convert_softmax(node: Node, ctx: LowerContext) -> Lowered:
    """Softmax(axis) on any single axis."""
    return _softmax_like(node, ctx, "softmax", single_axis(node))


def convert_relu(node: Node, ctx: LowerContext) -> Lowered:
    """ReLU(max_value, negative_slope, threshold)."""
    max_value = node.attrs.get("max_value")
    spec = ModuleSpec("KerasReLU", {
        "max_value": None if max_value is None else float(max_value),
        "negative_slope": float(node.attrs.get("negative_slope", 0.0)),
        "threshold": float(node.attrs.get("threshold", 0.0)),
    })
    return Lowered(spec, ANY)


def convert_leaky_relu(node: Node, ctx: LowerContext) -> Lowered:
    """LeakyReLU: `negative_slope` in Keras 3, `alpha` in Keras 2 (both default 0.3)."""
    slope = node.attrs.get("negative_slope", node.attrs.get("alpha", 0.3))
    return Lowered(ModuleSpec("LeakyReLU", {"negative_slope": float(slope)}), ANY)


def convert_elu(node: Node, ctx: LowerContext) -> Lowered:
    return Lowered(ModuleSpec("ELU", {"alpha": float(node.attrs.get("alpha", 1.0))}), ANY)


def convert_prelu(node: Node, ctx: LowerContext) -> Lowered:
    """PReLU: alpha is shaped like the input (shared axes of size 1): source layout."""
    spec = ModuleSpec("PReLU", {"alpha_shape": tuple(ctx.weight_shape("alpha"))})
    return Lowered(spec, SOURCE, (Binding("alpha", "alpha"),))


def convert_identity(node: Node, ctx: LowerContext) -> Lowered:
    """Identity, and the layers that only act in training (dropouts, noise, regularizers)."""
    return Lowered(ModuleSpec("Identity"), ANY)
