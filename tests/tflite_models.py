"""TFLite fixture models for the TFLite front-end tests, and the comparison they share.

Models are small seeded Keras graphs converted with `TFLiteConverter.from_keras_model` (the
SavedModel route wrote all-NaN files here), cached in the test fixture cache. Every check
compares the converted module against the TFLite interpreter's own outputs.

`python tests/tflite_models.py [NAME ...]` converts the .tflite forms of keras.applications
and prints the rows recorded in docs/tflite_compatibility.md.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from keras_models import APPLICATIONS as KERAS_APPLICATIONS
from keras_models import randomize_statistics
from tf2torch.conversion.graph import convert_graph
from tf2torch.references.tflite import tflite_runner
from tf2torch.sources.tflite.reader import read_tflite
from tf2torch.verification.checks import representable
from tf2torch.verification.report import GRAPH_TOLERANCE, VerificationReport, compare_runs, standard_inputs

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
FIXTURE_VERSION = "2"  # 2: non-trivial biases, slopes and statistics; logits


def cache_dir() -> Path:
    repo = Path(__file__).resolve().parents[1]
    root = os.environ.get("TF2TORCH_TEST_CACHE") or repo / ".cache" / "test-fixtures"
    folder = Path(root) / f"tflite-v{FIXTURE_VERSION}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# Forms a Keras model is converted to, and the cache-file suffix of each.
FORMS = {"float32": "", "float16": "-fp16", "dynamic": "-dynamic", "int8": "-full-int8",
         "int8-uint8io": "-full-int8-uint8io"}
CALIBRATION_SAMPLES = 8


def representative_data(model, samples: int = CALIBRATION_SAMPLES) -> Callable:
    """Seeded random inputs in [-1, 1] (seed 1: not the verification batch's seed 0)."""
    shapes = [(1, *(16 if d is None else d for d in i.shape[1:])) for i in model.inputs]

    def data():
        rng = np.random.default_rng(1)
        for _ in range(samples):
            yield [rng.uniform(-1, 1, s).astype(np.float32) for s in shapes]

    return data


def write_tflite(model, path: Path, form: str = "float32") -> Path:
    """Convert a Keras model with TensorFlow's converter, in one of `FORMS`: float16 weights,
    int8 weights with float activations ("dynamic": `Optimize.DEFAULT` alone), or full
    integer (int8 activations calibrated on `representative_data`; "int8-uint8io" also takes
    and gives uint8)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if form != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if form == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if form.startswith("int8"):
        converter.representative_dataset = representative_data(model)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if form == "int8-uint8io":
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    tmp = path.with_suffix(".part")
    tmp.write_bytes(converter.convert())
    tmp.replace(path)
    return path


def cached(name: str, build: Callable, form: str = "float32") -> Path:
    """The .tflite of `build()` (a Keras model) in `form`, converted once and cached;
    `PATCHES[name]`, if any, then edits the file."""
    path = cache_dir() / f"{name}{FORMS[form]}.tflite"
    if not path.exists():
        import keras

        keras.utils.set_random_seed(0)
        tmp = write_tflite(build(), path.with_suffix(".unpatched"), form)
        if name in PATCHES:
            PATCHES[name](tmp)
        tmp.replace(path)
    return path


def _set_fused_activation(code: str, ops: tuple[str, ...] = ("CONV_2D",)) -> Callable:
    """Edit a file (TensorFlow's own flatbuffer tools): every `ops` operator gets the fused
    activation `code` (TANH, SIGN_BIT, ...), which TF's converter never fuses into them."""
    def patch(path: Path) -> None:
        from tensorflow.lite.python import schema_py_generated as schema
        from tensorflow.lite.tools import flatbuffer_utils

        model = flatbuffer_utils.read_model(str(path))
        wanted = {getattr(schema.BuiltinOperator, op) for op in ops}
        for op in model.subgraphs[0].operators:
            if model.operatorCodes[op.opcodeIndex].builtinCode in wanted:
                op.builtinOptions.fusedActivationFunction = getattr(
                    schema.ActivationFunctionType, code)
        flatbuffer_utils.write_model(model, str(path))

    return patch


def _replace_op(old: str, new: str) -> Callable:
    """Edit a file: every `old` operator becomes `new` (same inputs and options), for ops TF's
    converter does not emit from Keras but the interpreter runs."""
    def patch(path: Path) -> None:
        from tensorflow.lite.python import schema_py_generated as schema
        from tensorflow.lite.tools import flatbuffer_utils

        model = flatbuffer_utils.read_model(str(path))
        for code in model.operatorCodes:
            if code.builtinCode == getattr(schema.BuiltinOperator, old):
                code.builtinCode = getattr(schema.BuiltinOperator, new)
                code.deprecatedBuiltinCode = min(code.builtinCode, 127)  # 127: see builtinCode
        flatbuffer_utils.write_model(model, str(path))

    return patch


def net_runner(conversion) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    net = conversion.net

    def run(x: np.ndarray | list[np.ndarray]) -> dict[str, np.ndarray]:
        xs = x if isinstance(x, list | tuple) else [x]
        with torch.no_grad():
            out = net(*[torch.from_numpy(np.asarray(a, np.float32)) for a in xs])
        outs = out if isinstance(out, tuple) else (out,)
        return {n: o.numpy() for n, o in zip(conversion.outputs, outs, strict=True)}

    return run


def verify_tflite(path: Path, layout: str = "nhwc", low: float = -1.0,
                  high: float = 1.0) -> VerificationReport:
    """Convert `path` and compare every output with the TFLite interpreter's."""
    source = read_tflite(path)
    conversion = convert_graph(source, layout)
    spec = source.graph.inputs[0]
    shape = tuple(16 if d is None else d for d in spec.shape)
    inputs = {case: representable(x, spec.dtype)
              for case, x in standard_inputs(shape, low=low, high=high).items()}
    run = net_runner(conversion)
    if layout == "nchw" and len(shape) == 3:
        nchw = run

        def run(x):
            out = nchw(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
            return {k: v.transpose(0, 2, 3, 1) if v.ndim == 4 else v for k, v in out.items()}

    return compare_runs(run, tflite_runner(path), inputs, {"*": GRAPH_TOLERANCE}, "tflite")


def _keras():
    import keras

    return keras


def _ops():
    import keras

    return keras.ops


def _model(shape, body, dtype: str = "float32") -> Callable:
    """A one-op-family model whose biases, PReLU slopes and BN statistics are non-trivial
    (Keras initialises them to constants a wrong conversion would still match)."""
    def build():
        keras = _keras()
        inp = keras.Input(shape, dtype=dtype)
        model = keras.Model(inp, body(keras, inp))
        randomize_statistics(model)
        return model

    return build


# One small model per op family: name → builder. Names say which TFLite ops they produce.
OP_MODELS: dict[str, Callable] = {
    "conv_2d_same_relu6": _model((17, 17, 3), lambda k, x: k.layers.Conv2D(
        8, 3, strides=2, padding="same", activation="relu6")(x)),
    "conv_2d_valid_dilated": _model((16, 16, 4), lambda k, x: k.layers.Conv2D(
        6, 3, dilation_rate=2, activation="relu")(x)),
    "conv_2d_grouped": _model((12, 12, 8), lambda k, x: k.layers.Conv2D(
        8, 3, padding="same", groups=2)(x)),
    "depthwise_multiplier": _model((15, 15, 4), lambda k, x: k.layers.DepthwiseConv2D(
        3, strides=2, padding="same", depth_multiplier=2, activation="relu")(x)),
    "transpose_conv_same": _model((8, 8, 4), lambda k, x: k.layers.Conv2DTranspose(
        6, 3, strides=2, padding="same")(x)),
    "transpose_conv_valid": _model((7, 7, 4), lambda k, x: k.layers.Conv2DTranspose(
        5, 2, strides=2, padding="valid", activation="relu")(x)),
    # SAME with a kernel wider than the stride: the crop starts inside the full output
    "transpose_conv_same_wide": _model((6, 6, 3), lambda k, x: k.layers.Conv2DTranspose(
        4, 5, strides=2, padding="same")(x)),
    "fully_connected_3d": _model((5, 6), lambda k, x: k.layers.Dense(4, activation="tanh")(x)),
    "pools_same": _model((13, 13, 4), lambda k, x: k.layers.Concatenate()([
        k.layers.MaxPooling2D(3, 2, padding="same")(x),
        k.layers.AveragePooling2D(3, 2, padding="same")(x)])),
    # maxima below zero too: an activation wrongly fused into MAXIMUM would show
    "binary_ops": _model((6, 6, 4), lambda k, x: k.layers.Maximum()([
        k.layers.Subtract()([x * 2.0, x / 3.0]) - 0.5, k.layers.Multiply()([x, x - 0.5]) - 0.3])),
    "broadcast_constants": _model((6, 6, 4), lambda k, x: k.ops.minimum(
        x * np.arange(1, 5, dtype=np.float32) + np.ones((6, 1, 4), np.float32), 0.7)),
    "activations": _model((5, 5, 3), lambda k, x: k.layers.Concatenate()([
        k.layers.Activation("sigmoid")(x), k.layers.Activation("tanh")(x),
        k.layers.Activation("hard_swish")(x), k.layers.LeakyReLU(0.3)(x),
        k.layers.Activation("elu")(x), k.ops.abs(x), k.ops.exp(x),
        k.layers.ReLU(max_value=6.0)(x * 8)])),
    "gelu_tanh_prelu": _model((4, 4, 3), lambda k, x: k.layers.Concatenate()([
        k.ops.gelu(x, approximate=True),
        k.layers.PReLU(shared_axes=[1, 2])(x)])),
    "unary_math": _model((4, 4, 3), lambda k, x: k.ops.sqrt(k.ops.abs(x) + 0.1)
                         + k.ops.rsqrt(k.ops.abs(x) + 1.0) + k.ops.log(k.ops.abs(x) + 1.0)
                         - k.ops.square(x) + k.ops.power(k.ops.abs(x) + 1.0, 1.5)
                         + k.ops.power(x - 0.2, 3.0)),  # negative powers too
    "softmax_axis": _model((4, 4, 6), lambda k, x: k.layers.Concatenate()([
        k.layers.Softmax()(x), k.ops.log_softmax(x)])),
    "reductions": _model((6, 5, 4), lambda k, x: k.layers.Concatenate()([
        k.ops.mean(x, axis=(1, 2)), k.ops.sum(x, axis=1)[:, 0], k.ops.max(x, axis=(1, 2)),
        k.ops.min(x, axis=(1, 2))])),
    "mean_keepdims": _model((6, 5, 4), lambda k, x: x - k.ops.mean(x, axis=-1, keepdims=True)),
    "reshape_transpose": _model((4, 6, 3), lambda k, x: k.layers.Dense(5)(
        k.layers.Flatten()(k.layers.Permute((2, 1, 3))(k.layers.Reshape((6, 4, 3))(x))))),
    "pad_and_zero_padding": _model((5, 5, 2), lambda k, x: k.layers.Conv2D(3, 3)(
        k.layers.ZeroPadding2D(((1, 2), (0, 1)))(x))),
    "mirror_pad": _model((5, 5, 2), lambda k, x: k.ops.concatenate([
        k.ops.pad(x, ((0, 0), (1, 2), (2, 1), (0, 0)), mode="reflect"),
        k.ops.pad(x, ((0, 0), (1, 2), (2, 1), (0, 0)), mode="symmetric")], axis=-1)),
    "resize_bilinear": _model((5, 7, 3), lambda k, x: k.layers.Concatenate()([
        k.layers.UpSampling2D(2, interpolation="bilinear")(x),
        k.layers.Resizing(10, 14, interpolation="bilinear")(x)])),
    "resize_nearest": _model((5, 7, 3), lambda k, x: k.layers.Concatenate()([
        k.layers.UpSampling2D(2)(x), k.layers.Resizing(10, 14, interpolation="nearest")(x)])),
    # a non-integer scale, where half-pixel centres pick other source pixels
    "resize_nearest_fractional": _model((5, 7, 3), lambda k, x: k.layers.Resizing(
        8, 11, interpolation="nearest")(x)),
    "strided_slice": _model((8, 8, 6), lambda k, x: k.layers.Concatenate()([
        x[:, 1:7:2, ::2, :3], x[:, :6:2, 2:6, 3:]])),
    "slice_squeeze_expand": _model((6, 4), lambda k, x: k.ops.expand_dims(
        x[:, 2, 1:3], axis=1)),
    "split_and_pack": _model((6, 6, 8), lambda k, x: k.ops.concatenate(
        [k.ops.stack(k.ops.split(x, 2, axis=-1), axis=1)[:, 1],
         k.ops.split(x, [2, 6], axis=-1)[1][..., :4]], axis=-1)),
    "gather_tile": _model((5, 6), lambda k, x: k.ops.tile(
        k.ops.take(x, np.array([4, 0, 2]), axis=2), (1, 2, 1))),
    "batch_matmul": _model((4, 6), lambda k, x: k.ops.matmul(
        x, k.ops.transpose(x, (0, 2, 1)))),
    "depth_to_space": _model((4, 4, 8), lambda k, x: k.ops.concatenate([
        _tf_depth_to_space(x, 2), _tf_depth_to_space(x, 2)], axis=-1)),
    "l2_normalize": _model((3, 3, 5), lambda k, x: _tf_l2_normalize(x)),
    "add_n": _model((4, 4, 3), lambda k, x: _tf_op(
        lambda tf, t: tf.math.add_n([t, t * 2.0, t * 3.0]))(x)),
    "cast_from_float16": _model((4, 3), lambda k, x: _tf_op(
        lambda tf, t: tf.cast(t, tf.float32) * 2.0)(x), dtype="float16"),
    "dequantize_float16": _model((4, 3), lambda k, x: _tf_op(  # CAST patched to DEQUANTIZE
        lambda tf, t: tf.cast(t, tf.float32) * 2.0)(x), dtype="float16"),
    # MediaPipe's custom op (XNNPACK runs it), made from a TRANSPOSE_CONV: published models
    # end it in a saturated sigmoid, which would hide a wrong kernel or bias
    "mediapipe_transpose_conv_bias": _model((5, 5, 3), lambda k, x: k.layers.Conv2DTranspose(
        4, 5, strides=2, padding="same")(x)),
    "unary_rounding": _model((4, 4, 3), lambda k, x: k.layers.Concatenate()([
        k.ops.ceil(x * 3), k.ops.floor(x * 3), k.ops.round(x * 3), k.ops.sign(x - 0.1),
        k.ops.sin(x * 2), k.ops.cos(x * 2), _tf_op(lambda tf, t: tf.negative(t))(x)])),
    "binary_division": _model((4, 4, 3), lambda k, x: k.layers.Concatenate()([
        _tf_op(lambda tf, t: tf.math.floordiv(t * 5.0, 0.7 + tf.abs(t)))(x),
        _tf_op(lambda tf, t: t / (1.5 + t * t))(x),
        _tf_op(lambda tf, t: tf.math.squared_difference(t, t * t))(x)])),
    "padv2_value": _model((4, 4, 3), lambda k, x: _tf_op(
        lambda tf, t: tf.pad(t, [[0, 0], [1, 2], [0, 1], [0, 0]], constant_values=0.5))(x)),
    # on the input itself: after an op that takes fused activations they would be fused
    "relu6_and_n1_to_1": _model((4, 4, 3), lambda k, x: _tf_op(
        lambda tf, t: tf.concat([tf.nn.relu6(t), tf.clip_by_value(t, -1.0, 1.0)], -1))(x)),
    "relu_0_to_1": _model((4, 4, 3), lambda k, x: _tf_op(  # RELU patched to RELU_0_TO_1
        lambda tf, t: tf.minimum(tf.nn.relu(t), 1.5))(x)),
    "slice": _model((4, 5, 3), lambda k, x: _tf_op(
        lambda tf, t: tf.slice(t, [0, 1, 2, 1], [-1, 2, 3, 2]))(x)),
    "space_to_depth": _model((4, 6, 3), lambda k, x: _tf_op(
        lambda tf, t: tf.nn.space_to_depth(t, 2))(x)),
    "squeeze_dynamic": _model((None, 1, 3), lambda k, x: _tf_op(
        lambda tf, t: tf.squeeze(t, axis=2))(x)),
    "unpack": _model((4, 3, 2), lambda k, x: _tf_op(
        lambda tf, t: tf.concat([a * (i + 1.0) for i, a in enumerate(tf.unstack(t, axis=1))],
                                axis=-1))(x)),
    "reduce_prod": _model((4, 3, 2), lambda k, x: _tf_op(
        lambda tf, t: tf.reduce_prod(t + 1.0, axis=[1, 2]))(x)),
    # fused activations TF's converter never fuses into a conv, set by editing the file:
    # TFLite's conv kernels apply only clamping ones (RELU_N1_TO_1) and ignore TANH/SIGN_BIT
    **{f"conv_fused_{code.lower()}": _model((6, 6, 3), lambda k, x: k.layers.Conv2D(4, 3)(x))
       for code in ("RELU_N1_TO_1", "TANH", "SIGN_BIT")},
}



def _to_mediapipe_transpose_conv(path: Path) -> None:
    """Edit a file: TRANSPOSE_CONV(output_shape, weights, input, bias) becomes MediaPipe's
    custom Convolution2DTransposeBias(input, weights, bias), its options the raw struct
    {TfLitePadding padding (SAME = 1, VALID = 2), int32 stride_w, stride_h}."""
    import struct

    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode, code.version = "Convolution2DTransposeBias", 1
    model.operatorCodes.append(code)
    for op in model.subgraphs[0].operators:
        if model.operatorCodes[op.opcodeIndex].builtinCode != schema.BuiltinOperator.TRANSPOSE_CONV:
            continue
        _, weights, x, bias = op.inputs
        options = op.builtinOptions
        padding = {schema.Padding.SAME: 1, schema.Padding.VALID: 2}[options.padding]
        op.opcodeIndex, op.inputs = len(model.operatorCodes) - 1, [x, weights, bias]
        op.customOptions = list(struct.pack("<iii", padding, options.strideW, options.strideH))
        op.builtinOptionsType, op.builtinOptions = schema.BuiltinOptions.NONE, None
    flatbuffer_utils.write_model(model, str(path))


# Input ranges other than [-1, 1], where an op is the identity inside that range.
INPUT_RANGES: dict[str, tuple[float, float]] = {"relu6_and_n1_to_1": (-8.0, 8.0)}

PATCHES: dict[str, Callable[[Path], None]] = {
    "relu_0_to_1": _replace_op("RELU", "RELU_0_TO_1"),
    "dequantize_float16": _replace_op("CAST", "DEQUANTIZE"),
    "mediapipe_transpose_conv_bias": _to_mediapipe_transpose_conv,
    **{f"conv_fused_{code.lower()}": _set_fused_activation(code)
       for code in ("RELU_N1_TO_1", "TANH", "SIGN_BIT")},
}


def _tf_op(fn: Callable) -> Callable:
    """A Keras Lambda running `fn(tf, tensor)`: TF ops Keras has no layer for."""
    import tensorflow as tf

    return _keras().layers.Lambda(lambda t: fn(tf, t))


def _tf_depth_to_space(x, block: int):
    import tensorflow as tf

    return _keras().layers.Lambda(lambda t: tf.nn.depth_to_space(t, block))(x)


def _tf_l2_normalize(x):
    import tensorflow as tf

    return _keras().layers.Lambda(lambda t: tf.math.l2_normalize(t, axis=-1))(x)


@dataclass(frozen=True)
class TfliteApp:
    """A keras.applications architecture whose .tflite forms are tested, built as in the
    Keras path: logits (no softmax head, which would saturate and hide errors) and random
    non-trivial statistics and biases (`randomize_statistics`). `name` is the cache file stem
    and test id."""

    name: str
    constructor: str
    size: int
    slow: bool = True
    mild: bool = False

    def build(self) -> Callable:
        return keras_application(self.constructor, self.size, self.mild)


_ORIGINAL = [
    TfliteApp("mobilenet_v2_96", "MobileNetV2", 96, slow=False),
    TfliteApp("mobilenet_v3_small_96", "MobileNetV3Small", 96, slow=False),
    TfliteApp("efficientnet_b0_96", "EfficientNetB0", 96, slow=False),
    TfliteApp("mobilenet_v3_large_96", "MobileNetV3Large", 96),
    TfliteApp("resnet50_64", "ResNet50", 64),
    TfliteApp("densenet121_64", "DenseNet121", 64),
    TfliteApp("nasnet_mobile_224", "NASNetMobile", 224),
]

# Every architecture of the Keras path (tests/keras_models.py), at its size there; the ones
# above stand for their architecture (and keep their names). The added ones are all slow.
APPLICATIONS: list[TfliteApp] = _ORIGINAL + [
    TfliteApp(f"{app.name.lower()}_{app.size}", app.name, app.size, mild=app.mild)
    for app in KERAS_APPLICATIONS if app.name not in {a.constructor for a in _ORIGINAL}
]


def keras_application(constructor: str, size: int, mild: bool = False) -> Callable:
    """The model `keras_models.build_application` saves: logits, randomized statistics."""

    def build():
        keras = _keras()
        cls = getattr(keras.applications, constructor)
        model = cls(input_shape=(size, size, 3), weights=None, classifier_activation=None)
        randomize_statistics(model, mild=mild)
        return model

    return build


def main(names: list[str]) -> None:
    for app in APPLICATIONS:
        if names and app.name not in names and app.constructor not in names:
            continue
        for form in ("float32", "float16"):
            path = cached(app.name, app.build(), form)
            start = time.perf_counter()
            report = verify_tflite(path)
            worst = max(c.max_abs for c in report.comparisons)
            print(f"| {path.name} | {form} | {worst:.2e} | "
                  f"{'PASS' if report.passed else 'FAIL'} | {time.perf_counter() - start:.1f} s |",
                  flush=True)
            if not report.passed:
                print(report.table(), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
