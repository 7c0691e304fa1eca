"""Convolutions handed to tf2torch's own oneDNN op (`native_ops.py`), with what follows them
fused: a zero pad before, the residual add and the activation after.

The graph is the single-image program's (`single_image.py`, plan `onednn-cached`). A layer
is taken when its weight is a constant of the program and its input float32 and 4-D; any other
stays an ATen convolution. What is fused is matched on the graph, so it is exactly what the
network computes: a residual is added only where the convolution's one use is an `add` of a
tensor of the output's shape, an activation only where it is the one use of what it follows.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import fx

aten = torch.ops.aten
_CONVS = {aten.conv2d.default, aten.convolution.default}
_PADS = {aten.constant_pad_nd.default, aten.pad.default}
_ACTIVATIONS = {aten.relu.default: "relu", aten.silu.default: "silu",
                aten.sigmoid.default: "sigmoid"}


def convs_to_native(module: fx.GraphModule) -> int:
    """Swap the convolutions `module` holds as constants for `torch.ops.tf2torch.conv`
    (loaded by the caller) in place; returns how many."""
    count = 0
    for node in list(module.graph.nodes):
        if node.op == "call_function" and node.target in _CONVS and _swap(module, node):
            count += 1
    if count:
        module.graph.eliminate_dead_code()
        module.graph.lint()
        module.recompile()
    return count


def _swap(module: fx.GraphModule, conv: fx.Node) -> bool:
    params = _conv_params(conv)
    if params is None:
        return False
    x, weight, bias, stride, padding, dilation, groups = params
    x, padding = _fold_pad(x, padding)  # (a pad the mirroring wrote has no recorded value)
    if not (_is_constant(module, weight) and (bias is None or _is_constant(module, bias))
            and _is_float_4d(x)):
        return False
    last, residual = conv, None
    add = _only_user(conv)
    if add is not None and add.target == aten.add.Tensor and add.kwargs.get("alpha", 1) == 1:
        other = add.args[1] if add.args[0] is conv else add.args[0]
        if (isinstance(other, fx.Node) and other is not conv and _is_float_4d(other)
                and _shape(other) == _shape(conv)):
            last, residual = add, other
    act = "none"
    follower = _only_user(last)
    if follower is not None:
        act = _activation(follower)
        if act != "none":
            last = follower
    with module.graph.inserting_before(last):
        fused = module.graph.call_function(torch.ops.tf2torch.conv.default, (
            x, weight, bias, list(stride), padding, list(dilation), groups, act, residual))
    fused.meta.update(last.meta)
    last.replace_all_uses_with(fused)
    return True


def _conv_params(node: fx.Node) -> tuple | None:
    """(x, weight, bias, stride, [top, left, bottom, right], dilation, groups) of a 2-D
    convolution, or None for one this op does not run (transposed, or padding by name)."""
    names = ("input", "weight", "bias", "stride", "padding", "dilation")
    if node.target == aten.convolution.default:
        x, weight, bias, stride, padding, dilation, transposed, _, groups = node.args[:9]
        if transposed:
            return None
    else:
        values: dict[str, Any] = {"bias": None, "stride": [1, 1], "padding": [0, 0],
                                  "dilation": [1, 1], "groups": 1}
        values.update(zip((*names, "groups"), node.args, strict=False))
        values.update(node.kwargs)
        x, weight, bias = values["input"], values["weight"], values["bias"]
        stride, padding, dilation, groups = (values[k] for k in (
            "stride", "padding", "dilation", "groups"))
    if isinstance(padding, str) or len(_pair(padding)) != 2:
        return None
    ph, pw = _pair(padding)
    return x, weight, bias, _pair(stride), [ph, pw, ph, pw], _pair(dilation), groups


def _pair(value: Any) -> list[int]:
    values = list(value) if isinstance(value, list | tuple) else [value]
    return values * 2 if len(values) == 1 else values


def _fold_pad(x: fx.Node, padding: list[int]) -> tuple[fx.Node, list[int]]:
    """A zero pad of height and width whose only use is this convolution, folded in."""
    if not (x.op == "call_function" and x.target in _PADS and len(x.users) == 1):
        return x, padding
    pads = list(_arg(x, 1, "pad", []))
    if x.target == aten.pad.default:
        mode, value = _arg(x, 2, "mode", "constant"), _arg(x, 3, "value", None)
    else:
        mode, value = "constant", _arg(x, 2, "value", 0)
    if mode != "constant" or (value or 0) != 0 or len(pads) != 4 or min(pads) < 0:
        return x, padding
    left, right, top, bottom = pads  # torch pads the last dimension first
    return x.args[0], [padding[0] + top, padding[1] + left, padding[2] + bottom,
                       padding[3] + right]


def _activation(node: fx.Node) -> str:
    if node.op != "call_function":
        return "none"
    if node.target in _ACTIVATIONS:
        return _ACTIVATIONS[node.target]
    if node.target == aten.hardtanh.default:
        low, high = _arg(node, 1, "min_val", -1.0), _arg(node, 2, "max_val", 1.0)
    elif node.target == aten.clamp.default:
        low, high = _arg(node, 1, "min", None), _arg(node, 2, "max", None)
    else:
        return "none"
    if not all(isinstance(v, int | float) for v in (low, high)):
        return "none"
    return "relu6" if (low, high) == (0, 6) else f"clip:{float(low)!r}:{float(high)!r}"


def _arg(node: fx.Node, index: int, name: str, default: Any) -> Any:
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def _only_user(node: fx.Node) -> fx.Node | None:
    return next(iter(node.users)) if len(node.users) == 1 else None


def _is_constant(module: fx.GraphModule, node: Any) -> bool:
    return isinstance(node, fx.Node) and node.op == "get_attr" and isinstance(
        operator.attrgetter(node.target)(module), torch.Tensor)


def _shape(node: fx.Node) -> tuple[int, ...] | None:
    value = node.meta.get("val")
    return tuple(value.shape) if isinstance(value, torch.Tensor) else None


def _is_float_4d(node: Any) -> bool:
    value = node.meta.get("val") if isinstance(node, fx.Node) else None
    return isinstance(value, torch.Tensor) and value.dim() == 4 and value.dtype == torch.float32
