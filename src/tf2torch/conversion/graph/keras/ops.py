"""Keras 3 op nodes (`keras.src.ops`) and Keras 2 TF-op layers (TFOpLambda) on tensors and
constants, plus the custom layers that keras.applications define."""

from __future__ import annotations

from typing import Any

from tf2torch.conversion.graph.registry import ANY, LowerContext, Lowered, ModuleSpec
from tf2torch.errors import UnsupportedError
from tf2torch.sources.ir import Node

# Keras 2 TFOpLambda `function` names → binary op names of `modules.BINARY`.
_TF_FUNCTIONS = {
    "__operators__.add": "add", "math.add": "add",
    "math.subtract": "subtract", "__operators__.sub": "subtract",
    "math.multiply": "multiply", "__operators__.mul": "multiply",
    "math.truediv": "divide", "math.divide": "divide", "__operators__.truediv": "divide",
    "math.maximum": "maximum", "math.minimum": "minimum", "math.pow": "power",
}


def _binary(node: Node, op: str, operands: list[Any]) -> Lowered:
    """`op` over one or two operands, tensors marked as {"tensor": i}."""
    tensors = [o for o in operands if isinstance(o, dict) and "tensor" in o]
    if len(operands) != 2 or not tensors:
        raise UnsupportedError(f"{node.name}: {op} with operands {operands!r}")
    if len(tensors) == 2:
        return Lowered(ModuleSpec("Merge", {"op": op}), ANY)
    constant_first = not isinstance(operands[0], dict)
    constant = operands[0] if constant_first else operands[1]
    if not isinstance(constant, int | float):
        raise UnsupportedError(f"{node.name}: {op} with a non-scalar constant")
    spec = ModuleSpec("ScalarOp", {"op": op, "constant": float(constant),
                                   "constant_first": constant_first})
    return Lowered(spec, ANY)


def _keras_op(op: str):
    def convert(node: Node, ctx: LowerContext) -> Lowered:
        return _binary(node, op, list(node.attrs.get("call_args", [])))

    convert.__name__ = convert.__qualname__ = f"convert_ops_{op}"
    return convert


convert_ops_add = _keras_op("add")
convert_ops_subtract = _keras_op("subtract")
convert_ops_multiply = _keras_op("multiply")
convert_ops_divide = _keras_op("divide")
convert_ops_maximum = _keras_op("maximum")
convert_ops_minimum = _keras_op("minimum")


def convert_tf_op_lambda(node: Node, ctx: LowerContext) -> Lowered:
    """Keras 2 TF-op layers on a tensor and a constant (`y` in the call kwargs)."""
    function = node.attrs.get("function")
    if function not in _TF_FUNCTIONS:
        raise UnsupportedError(f"{node.name}: TF op {function!r} is not supported")
    other = node.attrs.get("call_kwargs", {}).get("y")
    return _binary(node, _TF_FUNCTIONS[function], [{"tensor": 0}, other])


def convert_custom_scale(node: Node, ctx: LowerContext) -> Lowered:
    """InceptionResNetV2's CustomScaleLayer: inputs[0] + inputs[1] · scale."""
    return Lowered(ModuleSpec("ScaledSum", {"scale": float(node.attrs["scale"])}), ANY)


def _activation_op(name: str):
    def convert(node: Node, ctx: LowerContext) -> Lowered:
        return Lowered(ModuleSpec("Act", {"name": name}), ANY)

    convert.__name__ = convert.__qualname__ = f"convert_ops_{name}"
    return convert


def convert_ops_gelu(node: Node, ctx: LowerContext) -> Lowered:
    """keras.ops.gelu: its `approximate` defaults to True, unlike the gelu activation."""
    name = "gelu_tanh" if node.attrs.get("approximate", True) else "gelu"
    return Lowered(ModuleSpec("Act", {"name": name}), ANY)


# keras.ops activation functions used on tensors in functional models: op class → activation.
ACTIVATION_OPS = {
    "ops.Relu": _activation_op("relu"),
    "ops.Relu6": _activation_op("relu6"),
    "ops.Sigmoid": _activation_op("sigmoid"),
    "ops.HardSigmoid": _activation_op("hard_sigmoid"),
    "ops.Silu": _activation_op("silu"),
    "ops.HardSilu": _activation_op("hard_swish"),
    "ops.Tanh": _activation_op("tanh"),
    "ops.Selu": _activation_op("selu"),
    "ops.Softplus": _activation_op("softplus"),
    "ops.Softsign": _activation_op("softsign"),
    "ops.Exp": _activation_op("exponential"),
    "ops.Mish": _activation_op("mish"),
    "ops.Gelu": convert_ops_gelu,
}
