"""Full-integer TFLite arithmetic, simulated in float ("simulate" form of quantized models).

Every quantized tensor travels as its real value on its grid, float32(scale · (q − zero
point)), so the modules around them are the float ones and the model's interface stays
real-valued. A module recovers q − zero point exactly (`centred`), computes in integers
what the interpreter's default CPU runtime computes — accumulations exactly in float64;
XNNPACK's float32 requantization for convolutions, fully connected and MUL, its 2^shift
multipliers for ADD/SUB; TFLite's own fixed-point kernels where XNNPACK does not run the op
(MEAN, HARD_SWISH, TRANSPOSE_CONV with gemmlowp's double rounding) — and returns the real
value of the result. Ops without an integer module here run in float and are rounded onto
their output grid (`Requantized`), as TFLite's table-driven int8 kernels do.
"""

from __future__ import annotations

import math
import struct

import torch
import torch.nn.functional as F
from torch import nn

from tf2torch.conversion.graph import modules as shared
from tf2torch.conversion.graph.tflite.modules.fixedpoint import (
    centred,
    channel_view,
    exact_products,
    f32,
    f32_tensor,
    fp32_requantize,
    high_mul16,
    int16_multiplier,
    lrint,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    real,
    requantize,
    round_half_away,
    rounding_divide_by_pot,
    saturate16,
    scalar_multiplier,
)
from tf2torch.conversion.graph.tflite.modules.layers import (
    Conv2d,
    FullyConnected,
    TransposeConv2d,
    same_device,
)


class _Epilogue(nn.Module):
    """Bias (int32, exact), fixed-point requantization and the integer activation clamp of
    CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED and TRANSPOSE_CONV."""

    def setup(self, channels: int, quant: dict, bias: bool) -> None:
        self.in_scale, self.out_scale = quant["in_scale"], quant["out_scale"]
        self.out_zero, self.low, self.high = quant["out_zero"], quant["low"], quant["high"]
        self.double_rounding = quant.get("double_rounding", False)
        self.register_buffer("weight_scale", torch.empty(channels))
        self.register_buffer("bias_scale", torch.empty(channels) if bias else None)
        # the int32 bias exactly (a float32 parameter would round its low bits away)
        self.register_buffer("exact_bias", torch.empty(channels, dtype=torch.float64)
                             if bias else None)

    def integer_weight(self, weight: torch.Tensor, dim: int) -> torch.Tensor:
        scale = channel_view(self.weight_scale.double(), dim, weight.dim())
        return torch.round(weight.double() / scale)

    def finish(self, acc: torch.Tensor, dim: int) -> torch.Tensor:
        if self.exact_bias is not None:
            q_bias = torch.round(self.exact_bias / self.bias_scale.double())
            acc = acc + channel_view(q_bias, dim, acc.dim())
        if self.double_rounding:
            multiplier = self.in_scale * self.weight_scale.double() / self.out_scale
            return requantize(acc, channel_view(multiplier, dim, acc.dim()), self.out_scale,
                              self.out_zero, self.low, self.high, double=True)
        scale = f32(self.in_scale) * self.weight_scale.float() / f32(self.out_scale)
        return fp32_requantize(acc, channel_view(scale, dim, acc.dim()), self.out_scale,
                               self.out_zero, self.low, self.high)


class QConv2d(Conv2d, _Epilogue):
    """CONV_2D / DEPTHWISE_CONV_2D in int8/uint8 (cf): per-channel weights, exact int32
    accumulation, zero padding in the centred input (TFLite skips padded cells)."""

    def __init__(self, quant: dict, **conv) -> None:
        Conv2d.__init__(self, **conv)
        self.setup(conv["out_channels"], quant, conv["bias"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xi = centred(x, self.in_scale)
        if self.pads == "dynamic":
            xi = F.pad(xi, shared.resolve_pads(xi, None, self.kernel_size, self.stride,
                                               self.dilation))
        elif self.pad_first:
            xi = F.pad(xi, self.pad_first)
        c = self.conv
        weight = self.integer_weight(c.weight, 0)
        acc = exact_products(lambda a, b: F.conv2d(a, b, None, c.stride, c.padding, c.dilation,
                                                   c.groups), xi, weight, weight[0].numel())
        return self.finish(acc, 1)


class QFullyConnected(FullyConnected, _Epilogue):
    """FULLY_CONNECTED in int8/uint8 (per-tensor or per-channel weights)."""

    def __init__(self, quant: dict, **linear) -> None:
        FullyConnected.__init__(self, **linear)
        self.setup(linear["out_features"], quant, linear["bias"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xi = centred(x, self.in_scale).reshape(-1, self.in_features)
        acc = exact_products(torch.matmul, xi, self.integer_weight(self.weight, 0).T,
                             self.in_features)
        y = self.finish(acc, 1)
        return y.reshape(*x.shape[:-1], self.out_features) if self.keep_num_dims else y


class QTransposeConv2d(TransposeConv2d, _Epilogue):
    """TRANSPOSE_CONV in int8 (cf): exact int32 accumulation, then bias and requantization."""

    def __init__(self, quant: dict, **conv) -> None:
        TransposeConv2d.__init__(self, **conv)
        self.setup(conv["out_channels"], quant, conv["bias"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        weight = self.integer_weight(c.weight, 1)
        acc = exact_products(lambda a, b: F.conv_transpose2d(a, b, None, c.stride),
                             centred(x, self.in_scale), weight, weight[:, 0].numel())
        acc = self.crop(acc)
        return self.finish(acc, 1)


class QAddSub(nn.Module):
    """ADD / SUB in int8/uint8, as XNNPACK computes them: each centred input times an
    integer multiplier round(scale_i / scale_out · 2^shift) (the larger one has 21 bits),
    summed, then shifted right by `shift` with rounding half up."""

    def __init__(self, subtract: bool, scales: tuple, out_scale: float, out_zero: int,
                 low: int, high: int, const_shape: tuple | None = None,
                 const_first: bool = False, const_view: tuple | None = None) -> None:
        super().__init__()
        self.subtract, self.scales = subtract, tuple(scales)
        self.out_scale, self.out_zero, self.low, self.high = out_scale, out_zero, low, high
        self.const_first, self.const_view = const_first, const_view
        self.register_buffer("constant", torch.empty(tuple(const_shape))
                             if const_shape is not None else None)
        ratios = [f32(f32(s) / f32(out_scale)) for s in self.scales]
        exponent = math.frexp(max(ratios))[1] - 1  # floor(log2): the float's exponent
        self.shift = 20 - exponent
        self.multipliers = [lrint(r * 2.0 ** self.shift) for r in ratios]

    def _operands(self, xs: tuple) -> tuple:
        if self.constant is None:
            return same_device(xs)
        c = self.constant
        if self.const_view is not None:
            c = c.reshape(self.const_view[0]).permute(self.const_view[1])
        return same_device((c, xs[0]) if self.const_first else (xs[0], c))

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        a, b = self._operands(xs)
        ma, mb = self.multipliers
        total = centred(a, self.scales[0]).long() * ma + (
            centred(b, self.scales[1]).long() * (-mb if self.subtract else mb))
        q = torch.bitwise_right_shift(total + (1 << (self.shift - 1)), self.shift)
        q = torch.clamp(q + self.out_zero, self.low, self.high)
        return real(q - self.out_zero, self.out_scale)


class QMul(QAddSub):
    """MUL in int8/uint8 (XNNPACK): the exact product of the centred inputs, times the
    float32 scale s_a · s_b / s_out, rounded to nearest even."""

    def __init__(self, **kwargs) -> None:
        super().__init__(subtract=False, **kwargs)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        a, b = self._operands(xs)
        prod = centred(a, self.scales[0]) * centred(b, self.scales[1])
        scale = f32_tensor(f32(f32(self.scales[0]) * f32(self.scales[1]))
                            / f32(self.out_scale))
        return fp32_requantize(prod, scale, self.out_scale, self.out_zero, self.low,
                               self.high)


class QSquaredDifference(QAddSub):
    """SQUARED_DIFFERENCE in int8 (TFLite's builtin kernel, gemmlowp's double rounding;
    XNNPACK does not run it): both centred inputs on a common 2^7-finer grid, their
    difference squared, requantized."""

    def __init__(self, **kwargs) -> None:
        super().__init__(subtract=True, **kwargs)
        twice_max = 2.0 * max(self.scales)
        self.input_multipliers = [scalar_multiplier(s / twice_max) for s in self.scales]
        self.output_multiplier = scalar_multiplier(twice_max * twice_max
                                                   / ((1 << 14) * self.out_scale))

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        scaled = []
        for x, scale, (mult, shift) in zip(self._operands(xs), self.scales,
                                           self.input_multipliers, strict=True):
            shifted = centred(x, scale).long() * (1 << 7)
            scaled.append(multiply_by_quantized_multiplier(
                shifted, torch.tensor(mult), torch.tensor(shift), double=True))
        diff = scaled[0] - scaled[1]
        mult, shift = self.output_multiplier
        q = multiply_by_quantized_multiplier(diff * diff, torch.tensor(mult),
                                             torch.tensor(shift), double=True)
        q = torch.clamp(q + self.out_zero, self.low, self.high)
        return real(q - self.out_zero, self.out_scale)


class QBatchMatMul(nn.Module):
    """BATCH_MATMUL in int8: the exact product of the centred operands, requantized by
    scale_x · scale_y / scale_out."""

    def __init__(self, adj_x: bool, adj_y: bool, scales: tuple, out_scale: float,
                 out_zero: int, low: int, high: int, const_shape: tuple | None = None) -> None:
        super().__init__()
        self.adj_x, self.adj_y, self.scales = adj_x, adj_y, tuple(scales)
        self.out_scale, self.out_zero, self.low, self.high = out_scale, out_zero, low, high
        self.register_buffer("constant", torch.empty(tuple(const_shape))
                             if const_shape is not None else None)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        y = self.constant if y is None else y
        a, b = centred(x, self.scales[0]), centred(y, self.scales[1])
        if self.adj_x:
            a = a.transpose(-1, -2)
        if self.adj_y:
            b = b.transpose(-1, -2)
        multiplier = torch.tensor(self.scales[0] * self.scales[1] / self.out_scale,
                                  dtype=torch.float64)
        return requantize(exact_products(torch.matmul, a, b, a.shape[-1]), multiplier,
                          self.out_scale, self.out_zero,
                          self.low, self.high)


class QAveragePool2d(nn.Module):
    """AVERAGE_POOL_2D in int8/uint8 (cf): the sum of the raw q over the real (unpadded)
    cells of each window, divided by their count with rounding half away from zero."""

    def __init__(self, pool_size: tuple, strides: tuple, padding: str, scale: float,
                 zero: int, low: int, high: int) -> None:
        super().__init__()
        self.pool_size, self.strides, self.same = tuple(pool_size), tuple(strides), padding == "same"
        self.scale, self.zero, self.low, self.high = scale, zero, low, high

    def _sum(self, x: torch.Tensor) -> torch.Tensor:
        if self.same:
            x = F.pad(x, shared.resolve_pads(x, None, self.pool_size, self.strides, (1, 1)))
        return F.avg_pool2d(x, self.pool_size, self.strides, divisor_override=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = centred(x, self.scale) + self.zero
        count = self._sum(torch.ones_like(q[:1, :1]))
        q_out = torch.clamp(round_half_away(self._sum(q) / count), self.low, self.high)
        return real(q_out - self.zero, self.scale)


class QMean(nn.Module):
    """MEAN / SUM in int8/uint8: the exact sum of the centred input, requantized by
    in_scale / out_scale with 1/count folded into the multiplier as TFLite's reference
    kernel folds it (multiplier · 2^k // count, k = floor(log2 count))."""

    def __init__(self, axes: tuple, keepdims: bool, in_scale: float, out_scale: float,
                 out_zero: int, low: int, high: int, compute_sum: bool = False) -> None:
        super().__init__()
        self.axes, self.keepdims, self.compute_sum = tuple(axes), keepdims, compute_sum
        self.in_scale, self.out_scale, self.out_zero = in_scale, out_scale, out_zero
        self.low, self.high = low, high

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = centred(x, self.in_scale).sum(self.axes, keepdim=self.keepdims).long()
        count = 1
        for axis in self.axes:
            count *= x.shape[axis]
        mult, shift = (int(v) for v in quantize_multiplier(
            torch.tensor(self.in_scale / self.out_scale, dtype=torch.float64)))
        if not self.compute_sum:
            k = min(count.bit_length() - 1, 32, 31 + shift)
            mult, shift = (mult << k) // count, shift - k
        q = multiply_by_quantized_multiplier(total, torch.tensor(mult), torch.tensor(shift))
        q = torch.clamp(q + self.out_zero, self.low, self.high)
        return real(q - self.out_zero, self.out_scale)


class QHardSwish(nn.Module):
    """HARD_SWISH in int8/uint8: TFLite's int16 fixed-point kernel — x on a 2^7-finer
    grid, a "relu-ish" factor rescaled from [−3, 3] to [0, 1], their truncating high
    product, then the output shift."""

    def __init__(self, in_scale: float, in_zero: int, out_scale: float, out_zero: int,
                 low: int, high: int) -> None:
        super().__init__()
        self.in_scale, self.in_zero, self.out_scale, self.out_zero = (
            in_scale, in_zero, out_scale, out_zero)
        self.low, self.high = low, high
        hires = f32(f32(1.0 / 128.0) * f32(in_scale))
        self.out_mult, self.out_shift = int16_multiplier(f32(hires / f32(out_scale)))
        self.relu_mult, self.relu_shift = int16_multiplier(
            f32(hires / f32(f32(3.0) / f32(32768.0))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hires = saturate16(centred(x, self.in_scale).long() * (1 << 7))
        preshift = high_mul16(hires, self.out_mult)
        reluish = hires
        if self.relu_shift > 0:
            reluish = saturate16(reluish * (1 << (self.relu_shift - 1)))
        reluish = high_mul16(reluish, self.relu_mult)
        if self.relu_shift > 0:
            reluish = saturate16(reluish * 2)
        reluish = rounding_divide_by_pot(reluish, -self.relu_shift)
        reluish = torch.bitwise_right_shift(reluish + (1 << 15), 1)
        product = saturate16(torch.div(reluish * preshift, 1 << 15, rounding_mode="trunc"))
        q = rounding_divide_by_pot(product, -self.out_shift)
        q = torch.clamp(q + self.out_zero, self.low, self.high)
        return real(q - self.out_zero, self.out_scale)


class QLookup(nn.Module):
    """An int8 op given as its table of 256 outputs (computed at conversion from TFLite's
    fixed-point kernel: `conversion/graph/tflite/lookup.py`)."""

    def __init__(self, table: list, in_scale: float, in_zero: int, out_scale: float,
                 out_zero: int, low: int) -> None:
        super().__init__()
        self.in_scale, self.in_zero, self.out_scale, self.out_zero = (
            in_scale, in_zero, out_scale, out_zero)
        self.low, self.table = low, list(table)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = (centred(x, self.in_scale) + self.in_zero - self.low).long()
        table = torch.tensor(self.table, dtype=torch.float64, device=x.device)
        return real(table[index] - self.out_zero, self.out_scale)


class Quantize(nn.Module):
    """QUANTIZE: float → int (x · float32(1/scale), rounded to nearest even, as the default
    runtime does), or int → int (a requantization by in_scale / out_scale)."""

    def __init__(self, out_scale: float, out_zero: int, low: int, high: int,
                 in_scale: float | None = None, in_zero: int = 0) -> None:
        super().__init__()
        self.out_scale, self.out_zero, self.low, self.high = out_scale, out_zero, low, high
        self.in_scale, self.in_zero = in_scale, in_zero

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_scale is None:
            q = torch.round(x.float() * f32(1.0 / f32(self.out_scale))) + self.out_zero
            return real(torch.clamp(q, self.low, self.high) - self.out_zero, self.out_scale)
        multiplier = torch.tensor(self.in_scale / self.out_scale, dtype=torch.float64)
        return requantize(centred(x, self.in_scale), multiplier, self.out_scale,
                          self.out_zero, self.low, self.high)


class Requantized(nn.Module):
    """A float op whose int8 kernel is a table or rescaling: computed in float on the real
    inputs, rounded onto the output grid (y · (1/scale), half away from zero) and clamped."""

    def __init__(self, inner: nn.Module, scale: float, zero: int, low: int, high: int) -> None:
        super().__init__()
        self.inner, self.scale, self.zero, self.low, self.high = inner, scale, zero, low, high
        self.inverse = struct.unpack("f", struct.pack("f", 1.0 / scale))[0]  # float32 1/scale

    def forward(self, *xs: torch.Tensor):
        y = self.inner(*xs)
        if isinstance(y, tuple | list):
            return type(y)(self._round(t) for t in y)
        return self._round(y)

    def _round(self, y: torch.Tensor) -> torch.Tensor:
        if not y.is_floating_point():
            return y
        q = round_half_away(y.float() * self.inverse) + self.zero
        return real(torch.clamp(q, self.low, self.high) - self.zero, self.scale)


class Reinterpreted(nn.Module):
    """An int8 kernel that copies bytes (REVERSE_V2) onto an output grid other than its
    input's: TFLite keeps each q and reads it on the output grid (no requantization)."""

    def __init__(self, inner: nn.Module, in_scale: float, in_zero: int, out_scale: float,
                 out_zero: int) -> None:
        super().__init__()
        self.inner, self.in_scale, self.in_zero = inner, in_scale, in_zero
        self.out_scale, self.out_zero = out_scale, out_zero

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        q = centred(self.inner(*xs), self.in_scale) + self.in_zero
        return real(q - self.out_zero, self.out_scale)
