"""Integer lookup tables of int8 ops whose TFLite kernel is a fixed-point algorithm of one
int8 input: the table is that algorithm run on Python integers for each of the 256 inputs,
at conversion time, so the module (`QLookup`) reproduces it exactly.

RSQRT follows TFLite's `RsqrtEvalQuantized`: GetInvSqrtQuantizedMultiplierExp (a gemmlowp
fixed-point Newton-Raphson iteration) and two MultiplyByQuantizedMultiplier steps, with the
builtin kernels' double rounding.
"""

from __future__ import annotations

import math

_INT_MIN, _INT_MAX = -2**31, 2**31 - 1


def _high_mul(a: int, b: int) -> int:
    """gemmlowp's SaturatingRoundingDoublingHighMul on int32 values."""
    if a == b == _INT_MIN:
        return _INT_MAX
    ab = a * b + ((1 << 30) if a * b >= 0 else 1 - (1 << 30))
    return ab // (1 << 31) if ab >= 0 else -((-ab) // (1 << 31))


def _divide_pot(x: int, exponent: int) -> int:
    if exponent <= 0:
        return x
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if x & mask > threshold else 0)


def _multiply_pot(x: int, exponent: int) -> int:
    """SaturatingRoundingMultiplyByPOT."""
    if exponent > 0:
        return max(_INT_MIN, min(_INT_MAX, x * (1 << exponent)))
    return _divide_pot(x, -exponent)


def quantize_multiplier(m: float) -> tuple[int, int]:
    if m == 0:
        return 0, 0
    mantissa, exponent = math.frexp(m)
    q = math.floor(mantissa * 2**31 + 0.5)
    if q == 2**31:
        q, exponent = q // 2, exponent + 1
    if exponent < -31:
        return 0, 0
    return (2**31 - 1, 30) if exponent > 30 else (q, exponent)


def _multiply(x: int, mult: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier with gemmlowp's two roundings."""
    return _divide_pot(_high_mul(x * (1 << max(shift, 0)), mult), max(-shift, 0))


def _inv_sqrt(value: int) -> tuple[int, int]:
    """GetInvSqrtQuantizedMultiplierExp(value, reverse_shift=-1)."""
    if value <= 1:
        return _INT_MAX, 0
    shift = 11
    while value >= 1 << 29:
        value //= 4
        shift += 1
    pairs = (32 - value.bit_length() - 1) // 2 - 1
    shift -= pairs
    value <<= 2 * pairs
    half_input = _multiply_pot(value >> 1, -1)
    half_three = (1 << 28) + (1 << 27)
    x = 1 << 28  # 1.0 with three integer bits
    for _ in range(5):
        cube = _multiply_pot(_high_mul(_high_mul(x, x), x), 6)
        x = _multiply_pot(_high_mul(half_three, x) - _high_mul(half_input, cube), 3)
    x = _high_mul(x, 1518500250)  # √2 / 2
    if shift < 0:
        x, shift = x << -shift, 0
    return x, -shift


def rsqrt_table(in_scale: float, in_zero: int, out_scale: float, out_zero: int,
                low: int = -128, high: int = 127) -> list[int]:
    """q_out for every q_in in [low, high] (inputs below the zero point, which the kernel
    rejects, map to `high`)."""
    mult, shift = quantize_multiplier(1.0 / (math.sqrt(in_scale) * out_scale))
    table = []
    for q in range(low, high + 1):
        value = q - in_zero
        if value <= 0:
            table.append(high)
            continue
        inv, inv_shift = _inv_sqrt(value)
        data = _multiply(1, inv, inv_shift + 20)
        table.append(max(low, min(high, _multiply(data, mult, shift - 20) + out_zero)))
    return table


TABLES = {"RSQRT": rsqrt_table}
