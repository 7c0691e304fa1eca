"""One small TensorFlow graph per op (or op variant), written as a GraphDef by TensorFlow
from a `tf.function` with seeded constants, for tests/test_tf_graph_ops.py.

Each case is `OpCase(name, build, shapes)`: `build(tf, rng)` returns the function's body
(a callable on the input tensors) with its constants already drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class OpCase:
    name: str
    build: Callable
    shapes: tuple = ((None, 9, 11, 4),)
    low: float = -2.0
    high: float = 2.0
    zeros: bool = True  # False where zeros give inf or nan (rsqrt, x / y)


def _w(rng, *shape, scale=0.5):
    return rng.normal(0, scale, shape).astype(np.float32)


def _conv(padding, strides=1, dilations=1):
    def build(tf, rng):
        k = _w(rng, 3, 3, 4, 6)
        return lambda x: tf.nn.conv2d(x, k, strides, padding, dilations=dilations)
    return build


def _unary(name):
    def build(tf, rng):
        fn = {"gelu_erf": lambda x: 0.5 * x * (1 + tf.math.erf(x / np.float32(np.sqrt(2)))),
              "gelu_tanh": lambda x: tf.nn.gelu(x, approximate=True),
              "leaky_relu": lambda x: tf.nn.leaky_relu(x, 0.3)}.get(name)
        return fn or getattr(tf.math, name, None) or getattr(tf.nn, name)
    return build


def _binary(name, const=False):
    def build(tf, rng):
        fn = getattr(tf.math, name)
        if const:
            c = rng.uniform(0.5, 1.5, (4,)).astype(np.float32)
            return lambda x: fn(x, c)
        return lambda x, y: fn(x, y)
    return build


def _reduce(name):
    def build(tf, rng):
        return lambda x: getattr(tf, f"reduce_{name}")(x, [1, 2], keepdims=name == "max")
    return build


def _strided(tf, rng):
    return lambda x: tf.concat([tf.reshape(x[:, 1:-1:2, ::-3, 2], [-1, 16]),
                                tf.reshape(x[..., tf.newaxis, 1], [-1, 99])], -1)


def _resize(method, align, half):
    def build(tf, rng):
        op = tf.compat.v1.image.resize_bilinear if method == "bilinear" else \
            tf.compat.v1.image.resize_nearest_neighbor
        return lambda x: op(x, [14, 7], align_corners=align, half_pixel_centers=half)
    return build


def _batch_norm(tf, rng):
    args = [rng.uniform(0.5, 1.5, 4), rng.uniform(-.3, .3, 4), rng.uniform(-.5, .5, 4),
            rng.uniform(0.5, 2, 4)]
    args = [a.astype(np.float32) for a in args]
    return lambda x: tf.compat.v1.nn.fused_batch_norm(x, *args[:2], mean=args[2],
                                                      variance=args[3], epsilon=2e-3,
                                                      is_training=False)[0]


def _raw_batch_norm(tf, rng, op):
    scale, offset, mean = (rng.uniform(lo, hi, 4).astype(np.float32)
                           for lo, hi in ((0.5, 1.5), (-.3, .3), (-.5, .5)))
    variance = rng.uniform(0.5, 2, 4).astype(np.float32)
    return lambda x: getattr(tf.raw_ops, op)(x=x, scale=scale, offset=offset, mean=mean,
                                             variance=variance, epsilon=1e-3,
                                             is_training=False)[0]


R4 = ((None, 9, 11, 4),)
TWO = ((None, 9, 11, 4), (None, 9, 11, 4))
CASES: list[OpCase] = [
    OpCase("conv_same", _conv("SAME", 2)),
    OpCase("conv_valid_dilated", _conv("VALID", 1, 2)),
    OpCase("conv_explicit", _conv([[0, 0], [1, 2], [0, 3], [0, 0]])),
    OpCase("depthwise", lambda tf, rng: (lambda k: lambda x: tf.nn.depthwise_conv2d(
        x, k, [1, 2, 2, 1], "SAME"))(_w(rng, 3, 3, 4, 2))),
    # 5×5 at stride 2: SAME crops one row and column before (a 3×3 kernel crops none)
    OpCase("conv_transpose", lambda tf, rng: (lambda k: lambda x: tf.nn.conv2d_transpose(
        x, k, [tf.shape(x)[0], 18, 22, 5], 2, "SAME"))(_w(rng, 5, 5, 5, 4))),
    OpCase("conv_transpose_valid", lambda tf, rng: (lambda k: lambda x: tf.nn.conv2d_transpose(
        x, k, [tf.shape(x)[0], 19, 23, 5], 2, "VALID"))(_w(rng, 3, 3, 5, 4))),
    OpCase("conv3d", lambda tf, rng: (lambda k: lambda x: tf.nn.conv3d(
        x, k, [1, 1, 2, 1, 1], "SAME"))(_w(rng, 2, 3, 3, 4, 5)), ((None, 4, 6, 7, 4),)),
    OpCase("fused_batch_norm", _batch_norm),
    OpCase("bias_add_matmul", lambda tf, rng: (lambda w, b: lambda x: tf.nn.bias_add(
        tf.matmul(tf.reshape(x, [-1, 9 * 11 * 4]), w), b))(_w(rng, 396, 7, scale=.05),
                                                           _w(rng, 7)), R4),
    OpCase("batch_matmul", lambda tf, rng: lambda x, y: tf.matmul(x, y, transpose_b=True), TWO),
    OpCase("einsum", lambda tf, rng: (lambda k: lambda x: tf.einsum("bhwc,cd->bhd", x, k))(
        _w(rng, 4, 3))),
    *[OpCase(n, _unary(n)) for n in ("relu", "relu6", "elu", "selu", "sigmoid", "tanh",
                                     "softplus", "softsign", "erf", "exp", "square", "abs",
                                     "negative", "floor", "round", "sign", "gelu_erf",
                                     "gelu_tanh", "leaky_relu")],
    OpCase("rsqrt_sqrt_log", lambda tf, rng: lambda x: tf.math.rsqrt(x) + tf.sqrt(x) +
           tf.math.log(x), R4, 0.5, 3.0, zeros=False),
    OpCase("pow", lambda tf, rng: lambda x: tf.pow(x, 1.7), R4, 0.5, 3.0),
    *[OpCase(n, _binary(n), TWO) for n in ("add", "subtract", "multiply", "maximum", "minimum",
                                           "squared_difference")],
    OpCase("divide", _binary("divide"), TWO, zeros=False),
    OpCase("mul_const", _binary("multiply", const=True)),
    # TF1 Select with a vector condition picks rows (listed first: the mutation run's example)
    OpCase("select_v1_rows", lambda tf, rng: lambda x, y: tf.compat.v1.where(
        tf.reduce_mean(x, [1, 2, 3]) > 0.0, x, y), TWO),
    OpCase("compare_select", lambda tf, rng: lambda x, y: tf.where(x > y, x * 2.0, y) + tf.cast(
        tf.less_equal(x, 0.5), tf.float32), TWO),
    OpCase("select_v1", lambda tf, rng: lambda x, y: tf.compat.v1.where(
        tf.greater(x, 0.0), x, y), TWO),
    OpCase("select_v2_vector_condition", lambda tf, rng: lambda x, y: tf.where(
        tf.reduce_mean(y, [0, 1, 2]) > 0.0, x, y), TWO),  # broadcast on the last axis
    *[OpCase(f"reduce_{n}", _reduce(n)) for n in ("mean", "sum", "max", "min", "prod")],
    OpCase("argmax", lambda tf, rng: lambda x: tf.cast(tf.argmax(x, -1), tf.float32)),
    # integer outputs as they are: their dtype is compared too
    OpCase("argmax_int64", lambda tf, rng: lambda x: tf.argmax(x, -1)),
    OpCase("cast_int", lambda tf, rng: lambda x: tf.cast(x * 3.0, tf.int32)),
    OpCase("max_pool", lambda tf, rng: lambda x: tf.nn.max_pool2d(x, 3, 2, "SAME")),
    OpCase("avg_pool", lambda tf, rng: lambda x: tf.nn.avg_pool2d(x, 3, 2, "SAME")),
    OpCase("pool3d", lambda tf, rng: lambda x: tf.nn.max_pool3d(x, 2, 2, "VALID") +
           tf.nn.avg_pool3d(x, 2, 2, "VALID"), ((None, 5, 7, 8, 3),)),  # VALID drops a row
    OpCase("pool3d_same", lambda tf, rng: lambda x: tf.nn.max_pool3d(x, 3, 2, "SAME") +
           tf.nn.avg_pool3d(x, 3, 2, "SAME"), ((None, 5, 6, 7, 3),)),
    OpCase("pad", lambda tf, rng: lambda x: tf.pad(x, [[0, 0], [1, 2], [3, 0], [0, 0]])),
    OpCase("pad_v2", lambda tf, rng: lambda x: tf.pad(x, [[0, 0], [1, 1], [0, 2], [1, 0]],
                                                      constant_values=-1.5)),
    OpCase("mirror_pad", lambda tf, rng: lambda x: tf.pad(x, [[0, 0], [2, 1], [1, 2], [0, 0]],
                                                          "REFLECT")[:, :9, :11] + tf.pad(
        x, [[0, 0], [1, 0], [0, 0], [0, 0]], "SYMMETRIC")[:, 1:]),
    OpCase("concat_reshape_transpose", lambda tf, rng: lambda x, y: tf.transpose(tf.reshape(
        tf.concat([x, y], -1), [-1, 99, 8]), [0, 2, 1]), TWO),
    OpCase("squeeze_expand_dims", lambda tf, rng: lambda x: tf.expand_dims(tf.squeeze(
        tf.reduce_mean(x, 1, keepdims=True), 1), 2)),
    OpCase("strided_slice", _strided),
    OpCase("slice", lambda tf, rng: lambda x: tf.slice(x, [0, 2, 1, 0], [-1, 4, 8, 3])),
    OpCase("gather", lambda tf, rng: lambda x: tf.gather(x, [3, 0, 0, 2], axis=3)),
    OpCase("pack_unpack", lambda tf, rng: lambda x: tf.stack(tf.unstack(x, axis=3)[::-1], 1)),
    OpCase("split", lambda tf, rng: lambda x: (lambda a, b: a * b)(*tf.split(x, 2, axis=3))),
    OpCase("split_v", lambda tf, rng: lambda x: (lambda a, b, c: tf.concat(
        [a * b[:, :, :2], c], axis=2))(*tf.split(x, [2, 3, 6], axis=2))),
    OpCase("tile", lambda tf, rng: lambda x: tf.tile(x, [1, 2, 1, 3])),
    OpCase("softmax", lambda tf, rng: lambda x: tf.nn.softmax(x) + tf.nn.log_softmax(x)),
    OpCase("clip_by_value", lambda tf, rng: lambda x: tf.clip_by_value(x, -0.5, 0.7)),
    OpCase("range_fill_zeros_ones", lambda tf, rng: lambda x: x * tf.cast(tf.range(
        tf.shape(x)[3]), tf.float32) + tf.fill([9, 11, 4], 0.5) + tf.zeros_like(x) +
        tf.ones_like(x)),
    OpCase("top_k", lambda tf, rng: lambda x: tf.math.top_k(tf.reshape(x, [-1, 396]), 5)[0]),
    OpCase("dynamic_batch_reshape", lambda tf, rng: lambda x: tf.reshape(
        x, [tf.shape(x)[0], -1, 4]) * tf.cast(tf.shape(x)[1], tf.float32)),
    *[OpCase(f"resize_{m}{'_align' if a else ''}{'_half' if h else ''}", _resize(m, a, h))
      for m in ("bilinear", "nearest") for a, h in ((False, False), (True, False),
                                                    (False, True))],
    *[OpCase(n, _unary(n)) for n in ("atan", "ceil", "cos", "sin", "tan", "expm1", "rint")],
    OpCase("log1p", _unary("log1p"), R4, -0.9, 2.0),
    OpCase("reciprocal_inv", lambda tf, rng: lambda x: tf.math.reciprocal(x) + tf.raw_ops.Inv(
        x=x), R4, 0.5, 2.0, zeros=False),
    # the raw forms older graphs hold: Add (not AddV2), Div, BatchMatMul V1/V3, FusedBatchNorm
    # V1/V2, ClipByValue (tf.clip_by_value writes Minimum and Maximum)
    OpCase("add_v1", lambda tf, rng: lambda x, y: tf.raw_ops.Add(x=x, y=y * 0.5), TWO),
    OpCase("add_n", lambda tf, rng: lambda x, y: tf.add_n([x, y * 2.0, x]), TWO),
    OpCase("div_v1", lambda tf, rng: lambda x, y: tf.raw_ops.Div(x=x, y=y), TWO, zeros=False),
    # y rounded to whole numbers: zeros where divide_no_nan must give 0, not inf
    OpCase("div_no_nan", lambda tf, rng: lambda x, y: tf.math.divide_no_nan(x, tf.round(y)),
           TWO),
    OpCase("floor_div_mod", lambda tf, rng: lambda x, y: tf.math.floordiv(x * 3.0, y) +
           tf.math.floormod(x * 3.0, y) * 10.0, TWO, 0.3, 2.0, zeros=False),
    OpCase("truncate_div", lambda tf, rng: lambda x, y: tf.cast(tf.truncatediv(
        tf.cast(x * 20.0, tf.int32), tf.cast(tf.abs(y) * 3.0 + 1.0, tf.int32)),
        tf.float32), TWO),
    OpCase("batch_matmul_v1", lambda tf, rng: lambda x, y: tf.raw_ops.BatchMatMul(
        x=x, y=y, adj_y=True), TWO),
    OpCase("batch_matmul_v3", lambda tf, rng: lambda x, y: tf.raw_ops.BatchMatMulV3(
        x=x, y=y, Tout=tf.float32, adj_x=True), TWO),
    OpCase("fused_batch_norm_v1", lambda tf, rng: _raw_batch_norm(tf, rng, "FusedBatchNorm")),
    OpCase("fused_batch_norm_v2", lambda tf, rng: _raw_batch_norm(tf, rng, "FusedBatchNormV2")),
    OpCase("clip_by_value_raw", lambda tf, rng: lambda x: tf.raw_ops.ClipByValue(
        t=x, clip_value_min=np.float32(-0.5), clip_value_max=np.float32(0.7))),
    OpCase("argmin", lambda tf, rng: lambda x: tf.argmin(x, 2)),
    OpCase("space_batch_nd", lambda tf, rng: lambda x: tf.batch_to_space(tf.space_to_batch_nd(
        x, [2, 1], [[1, 0], [0, 0]]), [1, 2], [[0, 0], [1, 2]])),
    OpCase("depth_space", lambda tf, rng: lambda x: tf.nn.depth_to_space(
        tf.nn.space_to_depth(x, 2), 2) + tf.nn.space_to_depth(tf.nn.depth_to_space(
            x, 2), 2), ((None, 8, 10, 4),)),
    # equal and not-equal on rounded values, so that both outcomes occur
    OpCase("comparisons", lambda tf, rng: lambda x, y: tf.cast(tf.stack([
        tf.equal(tf.round(x), tf.round(y)), tf.not_equal(tf.round(x), tf.round(y)),
        tf.less(x, y), tf.greater_equal(x, y)], -1), tf.float32), TWO),
    OpCase("logical", lambda tf, rng: lambda x, y: tf.cast(tf.stack([
        tf.logical_and(x > 0.0, y > 0.0), tf.logical_or(x > 1.0, y < -1.0),
        tf.logical_not(x > y)], -1), tf.float32), TWO),
    # rounded operands: x/0 gives ±inf and 0/0 nan somewhere in the batch
    OpCase("is_finite_inf_nan", lambda tf, rng: lambda x, y: (lambda q: tf.cast(tf.stack([
        tf.math.is_finite(q), tf.math.is_inf(q), tf.math.is_nan(q)], -1), tf.float32))(
        tf.round(x) / tf.round(y)), TWO),
]


def write_graph(case: OpCase, path: Path, seed: int = 0) -> None:
    """The case as a GraphDef: placeholders `x`, `y`, constants inline, outputs Identity."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    body = case.build(tf, rng)
    names = ["x", "y", "z"][:len(case.shapes)]
    specs = [tf.TensorSpec(s, tf.float32, name=n) for s, n in zip(case.shapes, names,
                                                                  strict=True)]
    fn = tf.function(body, input_signature=specs, autograph=False)
    graph_def = fn.get_concrete_function().graph.as_graph_def()
    path.write_bytes(graph_def.SerializeToString())
