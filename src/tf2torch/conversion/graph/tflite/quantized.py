"""Quantized TFLite models: the two forms a full-integer model converts to.

- "float": the float converters on the dequantized weights (the reader serves every quantized
  constant dequantized); QUANTIZE/DEQUANTIZE are identities. Fine-tunable.
- "simulate": every op whose output is an int8/uint8 tensor reproduces TFLite's integer
  kernel (`modules/quant.py`): exactly for the ops that carry the arithmetic (convolutions,
  fully connected, add/sub/mul, average pooling, quantize), and for the others by computing
  in float and rounding onto the output grid, as TFLite's table-driven int8 kernels do.
The form is `graph.meta["quantized_form"]`, set by `convert_graph`; weight-only models always
take the float form (their activations are float; TFLite's hybrid kernels are not simulated).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from tf2torch.conversion.graph.registry import ANY, Binding, LowerContext, Lowered
from tf2torch.conversion.graph.tflite import lookup
from tf2torch.conversion.graph.tflite.common import operand, spec
from tf2torch.errors import UnsupportedError
from tf2torch.sources.ir import Graph, Node

SIMULATE, FLOAT = "simulate", "float"
FORMS = (SIMULATE, FLOAT)
_ACTIVATION_DTYPES = {"int8", "uint8"}
# Ops with a quantized output that the simulate form refuses, and why.
NOT_SIMULATED = {
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "its int8 kernel keeps int16 cell state and gate "
                                    "scales that are not simulated",
    "BIDIRECTIONAL_SEQUENCE_LSTM": "its int8 kernel keeps int16 cell state and gate "
                                   "scales that are not simulated",
}
Convert = Callable[[Node, LowerContext], Lowered]


def qparams(ctx: LowerContext, tensor: str) -> dict | None:
    return ctx.meta.get("quantization", {}).get(tensor)


def simulating(node: Node, ctx: LowerContext) -> bool:
    """The node computes an int8/uint8 tensor and the model converts in simulate form."""
    if ctx.meta.get("quantized_form") != SIMULATE:
        return False
    params = [qparams(ctx, t) for t in node.outputs]
    return any(p is not None and p["dtype"] in _ACTIVATION_DTYPES for p in params)


def check_simulation(graph: Graph) -> None:
    """Refuse, in one line, what the simulate form cannot reproduce (before building)."""
    if graph.meta.get("quantized_form") != SIMULATE:
        return
    table = graph.meta.get("quantization", {})
    found: dict[str, list[str]] = {}
    for node in graph.nodes:
        dtypes = {table[t]["dtype"] for t in node.outputs if t in table}
        if node.op in NOT_SIMULATED and dtypes & _ACTIVATION_DTYPES:
            found.setdefault(f"{node.op} ({NOT_SIMULATED[node.op]})", []).append(node.name)
        elif "int16" in dtypes:
            found.setdefault(f"{node.op} (int16 activations)", []).append(node.name)
    if found:
        listed = "; ".join(f"{op} ×{len(names)}: {', '.join(names[:3])}"
                           for op, names in sorted(found.items()))
        raise UnsupportedError(f"{graph.name}: the simulate form cannot reproduce {listed}; "
                               "convert with --quantized float (the dequantized model)")


def _grid(p: dict) -> tuple[float, int]:
    if len(p["scale"]) != 1:
        raise ValueError("per-channel quantized activations are not simulated")
    return float(p["scale"][0]), int(p["zero_point"][0])


def _quantize_value(value: float, p: dict) -> int:
    """TFLite's Quantize(f): zero point + round(f / scale), in float32, half away from 0."""
    scale, zero = _grid(p)
    x = float(np.float32(value) / np.float32(scale))
    return zero + int(np.sign(x) * np.floor(abs(x) + 0.5))


_CLAMPS = {"linear": (None, None), "relu": (0.0, None), "relu6": (0.0, 6.0),
           "relu_n1_to_1": (-1.0, 1.0), "relu_0_to_1": (0.0, 1.0)}


def activation_range(p: dict, activation: str) -> tuple[int, int]:
    """CalculateActivationRangeQuantized: the fused activation as an integer clamp."""
    if activation not in _CLAMPS:
        raise ValueError(f"fused activation {activation!r} has no integer kernel")
    low, high = p["qmin"], p["qmax"]
    lo_f, hi_f = _CLAMPS[activation]
    if lo_f is not None:
        low = max(low, _quantize_value(lo_f, p))
    if hi_f is not None:
        high = min(high, _quantize_value(hi_f, p))
    return low, high


def _output(node: Node, ctx: LowerContext, activation: str = "linear") -> dict:
    p = qparams(ctx, node.outputs[0])
    scale, zero = _grid(p)
    low, high = activation_range(p, activation)
    return {"out_scale": scale, "out_zero": zero, "low": low, "high": high}


def _operand_params(node: Node, ctx: LowerContext, pos: int) -> dict:
    kind = operand(node, pos)
    if kind.startswith("in:"):
        tensor = node.inputs[int(kind[3:])]
    elif kind.startswith("w:"):
        tensor = node.weights[kind[2:]]
    else:
        raise ValueError(f"operand {pos} ({kind}) is not a tensor")
    p = qparams(ctx, tensor)
    if p is None:
        raise ValueError(f"operand {pos} ({tensor}) is not quantized")
    return p


def _channels(values: list[float], count: int) -> list[float]:
    return list(values) if len(values) == count else list(values) * count


def _weighted(cls: str, channel_arg: str, double_rounding: bool = False) -> Callable:
    """Conv / depthwise / transpose conv / fully connected: the float spec plus the grid of
    input and output and the per-channel scales of weights and bias (as buffers).
    `double_rounding`: the op runs on TFLite's builtin kernel, not XNNPACK (see quant.py)."""

    def adapt(node: Node, ctx: LowerContext, lowered: Lowered) -> Lowered:
        kwargs = dict(lowered.spec.kwargs)
        channels = int(kwargs[channel_arg])
        data_pos = 2 if node.op == "TRANSPOSE_CONV" else 0
        in_scale, _ = _grid(_operand_params(node, ctx, data_pos))
        quant = {"in_scale": in_scale, **_output(node, ctx, kwargs.get("activation", "linear")),
                 "double_rounding": double_rounding}
        weight = next(b for b in lowered.bindings if b.param.endswith("weight"))
        w_params = qparams(ctx, node.weights[weight.source])
        if w_params is None:
            raise ValueError("the filter is not quantized")
        bindings = [*lowered.bindings,
                    Binding("weight_scale", value=_channels(w_params["scale"], channels))]
        bias = [b for b in lowered.bindings if b.param.endswith("bias")]
        if bias:
            b_params = qparams(ctx, node.weights[bias[0].source])
            if b_params is None:
                raise ValueError("the bias is not quantized")
            bindings += [Binding("bias_scale", value=_channels(b_params["scale"], channels)),
                         Binding("exact_bias", bias[0].source)]
        return Lowered(spec(cls, quant=quant, **kwargs), lowered.layout, tuple(bindings),
                       lowered.ignored)

    return adapt


def _elementwise(cls: str, **fixed) -> Callable:
    """ADD / SUB / MUL: the float Binary spec's constant handling, integer arithmetic."""

    def adapt(node: Node, ctx: LowerContext, lowered: Lowered) -> Lowered:
        kwargs = dict(lowered.spec.kwargs)
        scales = tuple(_grid(_operand_params(node, ctx, pos))[0] for pos in (0, 1))
        out = _output(node, ctx, kwargs.pop("activation", "linear"))
        kwargs.pop("op")
        return replace(lowered, spec=spec(cls, scales=scales, **out, **fixed, **kwargs))

    return adapt


def _batch_matmul(node: Node, ctx: LowerContext, lowered: Lowered) -> Lowered:
    scales = tuple(_grid(_operand_params(node, ctx, pos))[0] for pos in (0, 1))
    module = spec("QBatchMatMul", scales=scales, **_output(node, ctx), **lowered.spec.kwargs)
    return replace(lowered, spec=module)


def _average_pool(node: Node, ctx: LowerContext, lowered: Lowered) -> Lowered:
    kwargs = lowered.spec.kwargs
    in_p, out_p = _operand_params(node, ctx, 0), qparams(ctx, node.outputs[0])
    if _grid(in_p) != _grid(out_p):
        return requantized(node, ctx, lowered)
    out = _output(node, ctx, kwargs["activation"])
    module = spec("QAveragePool2d", pool_size=kwargs["pool_size"], strides=kwargs["strides"],
                  padding=kwargs["padding"], scale=out["out_scale"], zero=out["out_zero"],
                  low=out["low"], high=out["high"])
    return replace(lowered, spec=module)


def _reduce(compute_sum: bool) -> Callable:
    def adapt(node: Node, ctx: LowerContext, lowered: Lowered) -> Lowered:
        kwargs = lowered.spec.kwargs
        in_scale, _ = _grid(_operand_params(node, ctx, 0))
        module = spec("QMean", axes=kwargs["axes"], keepdims=kwargs["keepdims"],
                      in_scale=in_scale, compute_sum=compute_sum, **_output(node, ctx))
        return replace(lowered, spec=module)

    return adapt


def _hard_swish(node: Node, ctx: LowerContext, lowered: Lowered) -> Lowered:
    in_scale, in_zero = _grid(_operand_params(node, ctx, 0))
    out = _output(node, ctx)
    module = spec("QHardSwish", in_scale=in_scale, in_zero=in_zero, out_scale=out["out_scale"],
                  out_zero=out["out_zero"], low=out["low"], high=out["high"])
    return replace(lowered, spec=module)


def _lookup(node: Node, ctx: LowerContext, lowered: Lowered) -> Lowered:
    """An int8 op of one input whose kernel is a fixed-point algorithm: its exact table."""
    in_p, out_p = _operand_params(node, ctx, 0), qparams(ctx, node.outputs[0])
    (in_scale, in_zero), (out_scale, out_zero) = _grid(in_p), _grid(out_p)
    table = lookup.TABLES[node.op](float(np.float32(in_scale)), in_zero,
                                   float(np.float32(out_scale)), out_zero, in_p["qmin"],
                                   in_p["qmax"])
    module = spec("QLookup", table=table, in_scale=in_scale, in_zero=in_zero,
                  out_scale=out_scale, out_zero=out_zero, low=in_p["qmin"])
    return replace(lowered, spec=module)


def _quantize(node: Node, ctx: LowerContext, lowered: Lowered) -> Lowered:
    out = _output(node, ctx)
    source = qparams(ctx, node.inputs[0])
    extra = {}
    if source is not None:  # int → int: a requantization
        extra = dict(zip(("in_scale", "in_zero"), _grid(source), strict=True))
    module = spec("Quantize", out_scale=out["out_scale"], out_zero=out["out_zero"],
                  low=out["low"], high=out["high"], **extra)
    return Lowered(module, ANY)


def requantized(node: Node, ctx: LowerContext, lowered: Lowered) -> Lowered:
    """Any other op: computed in float, rounded onto the output grid."""
    scale, zero = _grid(qparams(ctx, node.outputs[0]))
    p = qparams(ctx, node.outputs[0])
    module = spec("Requantized", inner=lowered.spec, scale=scale, zero=zero, low=p["qmin"],
                  high=p["qmax"])
    bindings = tuple(replace(b, param=f"inner.{b.param}") for b in lowered.bindings)
    return replace(lowered, spec=module, bindings=bindings)


# Ops that copy bytes even where TensorFlow's converter gave the output another grid than the
# input (a Keras Bidirectional layer's ReverseV2): each q is kept and read on the output grid
# (measured on the interpreter, XNNPACK and builtin kernels alike: tests/test_tflite_quantized).
BYTE_COPY = {"REVERSE_V2"}


def _byte_copy(node: Node, ctx: LowerContext, lowered: Lowered) -> Lowered:
    (in_scale, in_zero), (out_scale, out_zero) = (
        _grid(_operand_params(node, ctx, 0)), _grid(qparams(ctx, node.outputs[0])))
    if (in_scale, in_zero) == (out_scale, out_zero):
        return lowered
    module = spec("Reinterpreted", inner=lowered.spec, in_scale=in_scale, in_zero=in_zero,
                  out_scale=out_scale, out_zero=out_zero)
    bindings = tuple(replace(b, param=f"inner.{b.param}") for b in lowered.bindings)
    return replace(lowered, spec=module, bindings=bindings)


# How each op's float lowering becomes its integer simulation.
EXACT = {
    "CONV_2D": _weighted("QConv2d", "out_channels"),
    "DEPTHWISE_CONV_2D": _weighted("QConv2d", "out_channels"),
    "TRANSPOSE_CONV": _weighted("QTransposeConv2d", "out_channels", double_rounding=True),
    "FULLY_CONNECTED": _weighted("QFullyConnected", "out_features"),
    "ADD": _elementwise("QAddSub", subtract=False),
    "SUB": _elementwise("QAddSub", subtract=True),
    "MUL": _elementwise("QMul"),
    "SQUARED_DIFFERENCE": _elementwise("QSquaredDifference"),
    "BATCH_MATMUL": _batch_matmul,
    "AVERAGE_POOL_2D": _average_pool,
    "MEAN": _reduce(compute_sum=False),
    "SUM": _reduce(compute_sum=True),
    "QUANTIZE": _quantize,
    "HARD_SWISH": _hard_swish,
    "RSQRT": _lookup,
    **dict.fromkeys(BYTE_COPY, _byte_copy),
}
# Ops that only move values (the output grid is the input's): no rounding needed.
PASSTHROUGH = {"DEQUANTIZE", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "MAX_POOL_2D",
               "STRIDED_SLICE", "SLICE", "GATHER", "SPLIT", "SPLIT_V", "PACK", "UNPACK",
               "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "TILE", "BROADCAST_TO"}
def quantization_aware(op: str, converter: Convert) -> Convert:
    """`converter` (the float lowering) adapted to the simulate form where the node's output
    is quantized; unchanged otherwise."""

    def convert(node: Node, ctx: LowerContext) -> Lowered:
        lowered = converter(node, ctx)
        if not simulating(node, ctx) or op in PASSTHROUGH:
            return lowered
        return EXACT.get(op, requantized)(node, ctx, lowered)

    convert.__name__ = converter.__name__
    return convert


def convert_quantize(node: Node, ctx: LowerContext) -> Lowered:
    """QUANTIZE in the float form: the value stays real (the simulate form rounds it)."""
    return Lowered(spec("Identity"), ANY)
