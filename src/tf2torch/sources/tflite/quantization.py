"""Quantized TFLite tensors: which ones a file quantizes, their parameters, dequantization.

TFLite stores real = scale · (q − zero_point), with one (scale, zero point) per tensor or one
per slice along `quantized_dimension` (per-channel weights: axis 0 of a conv filter, axis 3 of
a depthwise one). Two kinds of quantized files are common:
- weight-only ("dynamic range"): int8 constant weights, float activations; TFLite's hybrid
  kernels quantize activations on the fly;
- full-integer: int8/uint8 (or int16) activations too, int32 biases, QUANTIZE/DEQUANTIZE at
  the float edges.
The reader serves every quantized constant dequantized (float32) and records the parameters
of every quantized tensor in the graph's `meta["quantization"]`, so nothing is treated as
float silently: converters and verification read them from there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tf2torch.sources.tflite.schema import Quantization, TflSubgraph, TflTensor

# Integer types that carry quantization parameters (INT32/INT64: biases).
INTEGER_TYPES = {"INT4", "INT8", "UINT8", "INT16", "INT32", "INT64"}
# Integer types a full-integer model computes its activations in.
ACTIVATION_TYPES = {"INT8", "UINT8", "INT16"}
RANGES = {"INT4": (-8, 7), "INT8": (-128, 127), "UINT8": (0, 255), "INT16": (-32768, 32767),
          "INT32": (-2**31, 2**31 - 1), "INT64": (-2**63, 2**63 - 1)}

WEIGHT_ONLY, FULL_INTEGER = "weight-only", "full-integer"


def is_quantized(t: TflTensor) -> bool:
    """An integer tensor with a nonzero scale (shape tensors and indices have none)."""
    q = t.quantization
    return q is not None and t.dtype in INTEGER_TYPES and any(s != 0.0 for s in q.scale)


def dequantize(values: np.ndarray, q: Quantization, dtype: str = "INT8") -> np.ndarray:
    """float32(scale · (q − zero_point)), per channel along `q.axis` where there are several
    scales (computed in float64, as TFLite's DEQUANTIZE does). int32/int64 biases stay
    float64: float32 would lose their low bits, which the integer simulation needs."""
    values = np.asarray(values)
    scale = np.asarray(q.scale, np.float64)
    zero = np.asarray(q.zero_point, np.float64)
    if scale.size > 1 and values.ndim:
        shape = [1] * values.ndim
        shape[q.axis] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    result = scale * (values.astype(np.float64) - zero)
    return result if dtype in ("INT32", "INT64") else result.astype(np.float32)


def params(t: TflTensor) -> dict[str, Any]:
    """A quantized tensor's parameters as JSON: dtype, scale, zero point, axis, range."""
    q = t.quantization
    assert q is not None
    low, high = RANGES[t.dtype]
    return {"dtype": t.dtype.lower(), "scale": [float(s) for s in q.scale],
            "zero_point": [int(z) for z in q.zero_point], "axis": int(q.axis),
            "qmin": low, "qmax": high}


def kind_of(sub: TflSubgraph, constant: set[int]) -> str | None:
    """FULL_INTEGER if some computed tensor (or input) is quantized, WEIGHT_ONLY if only
    constants are, else None."""
    quantized = [t for t in sub.tensors if is_quantized(t)]
    if any(t.index not in constant and t.dtype in ACTIVATION_TYPES for t in quantized):
        return FULL_INTEGER
    if quantized:
        return WEIGHT_ONLY
    return None


def summary(sub: TflSubgraph, constant: set[int], names: list[str]) -> dict[str, Any] | None:
    """What a file quantizes, for the model card: kind, weight and activation types, how
    many weights are per-channel, and the parameters of quantized model inputs/outputs."""
    kind = kind_of(sub, constant)
    if kind is None:
        return None
    weights: dict[str, int] = {}
    per_channel = 0
    activations: set[str] = set()
    for t in sub.tensors:
        if not is_quantized(t):
            continue
        if t.index in constant:
            weights[t.dtype.lower()] = weights.get(t.dtype.lower(), 0) + 1
            per_channel += len(t.quantization.scale) > 1
        elif t.dtype in ACTIVATION_TYPES:
            activations.add(t.dtype.lower())

    def edge(indices: tuple[int, ...]) -> list[dict[str, Any]]:
        return [{"name": names[i], **params(sub.tensors[i])} for i in indices
                if is_quantized(sub.tensors[i])]

    return {"kind": kind, "weights": weights, "per_channel_weights": per_channel,
            "activations": sorted(activations), "inputs": edge(sub.inputs),
            "outputs": edge(sub.outputs)}


def unpack_int4(raw: np.ndarray, count: int) -> np.ndarray:
    """Packed INT4 (two per byte, low nibble first) → int8 values."""
    low, high = raw & 0x0F, raw >> 4
    nibbles = np.stack([low, high], axis=-1).reshape(-1)[:count].astype(np.int8)
    return (nibbles ^ 8) - 8
