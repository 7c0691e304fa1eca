"""Fixed-point and float32 arithmetic of TFLite's integer kernels, on torch tensors: the
rounding of the runtimes (TFLite's gemmlowp-style fixed point, XNNPACK's float32
requantization), multipliers as QuantizeMultiplier makes them, and the on-grid convention of
`quant.py` (q − zero point recovered exactly from a real value, and back).
"""

from __future__ import annotations

import struct

import torch


def lrint(x: float) -> int:
    """lrintf: round to nearest, ties to even."""
    return round(x)


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    """std::round / TfLiteRound: halves away from zero (torch.round goes to even)."""
    return torch.sign(x) * torch.floor(torch.abs(x) + 0.5)


def centred(x: torch.Tensor, scale: float | torch.Tensor) -> torch.Tensor:
    """q − zero point of an on-grid real tensor, exactly, as float64."""
    return torch.round(x.double() / scale)


def real(q_minus_zero: torch.Tensor, scale: float) -> torch.Tensor:
    """float32(scale · (q − zero point)), the value TFLite's DEQUANTIZE gives."""
    return (q_minus_zero.double() * scale).float()


def quantize_multiplier(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """TFLite's QuantizeMultiplier: m = mult · 2^(shift − 31), mult a Q31 int (int64 here)."""
    mantissa, exponent = torch.frexp(m.double())
    mult = round_half_away(mantissa * 2.0**31).long()
    shift = exponent.long()
    top = mult == 2**31
    mult, shift = torch.where(top, mult // 2, mult), shift + top.long()
    tiny = shift < -31
    mult, shift = torch.where(tiny, 0, mult), torch.where(tiny, 0, shift)
    big = shift > 30
    return torch.where(big, 2**31 - 1, mult), torch.where(big, 30, shift)


def multiply_by_quantized_multiplier(x: torch.Tensor, mult: torch.Tensor,
                                     shift: torch.Tensor, double: bool = False) -> torch.Tensor:
    """TFLite's MultiplyByQuantizedMultiplier (int64 tensors, broadcasting).

    Single rounding, (x·mult + 2^(30−shift)) >> (31 − shift), is what the default CPU
    runtime (XNNPACK) computes; `double` is gemmlowp's two roundings (a rounding doubling
    high multiply, then a rounding right shift, both half away from zero), which some of
    TFLite's builtin kernels (TRANSPOSE_CONV) still use."""
    if double:
        product = x * mult  # SaturatingRoundingDoublingHighMul; mult ≥ 0 never saturates
        high = torch.div(product + torch.where(product >= 0, 1 << 30, 1 - (1 << 30)), 1 << 31,
                         rounding_mode="trunc")
        exponent = torch.clamp(-shift, min=0)
        high = torch.bitwise_left_shift(high, torch.clamp(shift, min=0))
        mask = torch.bitwise_left_shift(torch.ones_like(exponent), exponent) - 1
        threshold = torch.bitwise_right_shift(mask, 1) + (high < 0).long()
        return (torch.bitwise_right_shift(high, exponent)
                + (torch.bitwise_and(high, mask) > threshold).long())
    total = 31 - shift
    nudge = torch.bitwise_left_shift(torch.ones_like(total), total - 1)
    return torch.bitwise_right_shift(x * mult + nudge, total)


def requantize(acc: torch.Tensor, multiplier: torch.Tensor, out_scale: float, out_zero: int,
               low: int, high: int, double: bool = False) -> torch.Tensor:
    """An int32 accumulator (integral float64) → the real value of the clamped int8 output."""
    mult, shift = quantize_multiplier(multiplier)
    q = multiply_by_quantized_multiplier(acc.long(), mult, shift, double) + out_zero
    return real(torch.clamp(q, low, high) - out_zero, out_scale)


def f32(value: float) -> float:
    """A Python float rounded to float32 (for float32 arithmetic on scalars)."""
    return struct.unpack("f", struct.pack("f", value))[0]


def f32_tensor(value: float) -> torch.Tensor:
    return torch.tensor(f32(value), dtype=torch.float32)


def fp32_requantize(acc: torch.Tensor, scale: torch.Tensor, out_scale: float, out_zero: int,
                    low: int, high: int) -> torch.Tensor:
    """XNNPACK's requantization: float32(acc) · float32 scale, rounded to nearest even."""
    q = torch.round(acc.float() * scale).double() + out_zero
    return real(torch.clamp(q, low, high) - out_zero, out_scale)


def channel_view(t: torch.Tensor, dim: int, rank: int) -> torch.Tensor:
    """A per-channel vector shaped to broadcast along `dim` of a rank-`rank` tensor."""
    shape = [1] * rank
    shape[dim] = -1
    return t.reshape(shape)


def scalar_multiplier(m: float) -> tuple[int, int]:
    """QuantizeMultiplier on a Python float: (Q31 multiplier, shift)."""
    mult, shift = quantize_multiplier(torch.tensor(m, dtype=torch.float64, device="cpu"))
    return int(mult), int(shift)


def int16_multiplier(m: float) -> tuple[int, int]:
    """QuantizeMultiplier, then DownScaleInt32ToInt16Multiplier (rounded to Q15)."""
    mult, shift = scalar_multiplier(m)
    return (32767 if mult >= 2**31 - 1 - 2**15 else (mult + 2**15) >> 16), shift


def saturate16(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x, -32768, 32767)


def high_mul16(a: torch.Tensor, b: int) -> torch.Tensor:
    """int16 SaturatingRoundingDoublingHighMul; b is never −32768 here."""
    ab = a * b
    ab = ab + torch.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    return torch.div(ab, 1 << 15, rounding_mode="trunc")


def rounding_divide_by_pot(x: torch.Tensor, exponent: int) -> torch.Tensor:
    """gemmlowp's RoundingDivideByPOT (half away from zero)."""
    if exponent <= 0:
        return x
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (x < 0).long()
    return torch.bitwise_right_shift(x, exponent) + (torch.bitwise_and(x, mask) > threshold).long()


def exact_products(op, x: torch.Tensor, w: torch.Tensor, terms: int) -> torch.Tensor:
    """op(x, w) for integral x, w (a conv or matmul: sums of `terms` products), exactly.

    float64 is exact but slow on CPU; float32 is exact while every partial sum stays below
    2^24. Splitting x = 16·high + low (|high| ≤ 16, 0 ≤ low < 16) keeps each product within
    16·max|w|, so two float32 passes are exact whenever terms · 16 · max|w| < 2^24."""
    if w.is_meta or x.is_meta or terms * 16 * float(w.abs().max()) >= 2**24:
        return op(x.double(), w.double())
    high = torch.div(x, 16, rounding_mode="floor")
    w32 = w.float()
    return op(high.float(), w32).double() * 16 + op((x - 16 * high).float(), w32).double()
