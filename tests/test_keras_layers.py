"""Every Keras layer converter and option, on small models, compared with Keras itself."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.keras_models import compare_with_keras, randomize_statistics

from tf2torch.conversion.graph import build_from_ir, convert_graph
from tf2torch.conversion.graph.converters import default_registry
from tf2torch.conversion.graph.registry import Registry
from tf2torch.errors import SourceError, UnsupportedError
from tf2torch.sources.keras.reader import read_keras

keras = pytest.importorskip("keras")


def chain(shape, *layers, name="model"):
    """A functional model applying `layers` in order to one input of `shape`."""
    x = inputs = keras.Input(shape)
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x, name=name)


def conv_then(shape, *layers):
    """A conv first, so the layers under test receive channels-first tensors internally."""
    return chain(shape, keras.layers.Conv2D(shape[-1], 1), *layers)


L = keras.layers

# id → (builder, input range); built lazily so that collection does not need TensorFlow.
CASES = {
    "conv_same_stride2_odd": lambda: chain((9, 9, 3), L.Conv2D(4, 3, 2, "same", activation="relu")),
    "conv_same_stride2_even": lambda: chain((8, 8, 3), L.Conv2D(4, 3, 2, "same")),
    "conv_valid_stride3": lambda: chain((11, 11, 2), L.Conv2D(3, (3, 2), 3, "valid")),
    "conv_dilated_groups": lambda: chain(
        (10, 10, 6), L.Conv2D(6, 3, padding="same", dilation_rate=2, groups=3)),
    "conv_nobias_5x5_same_k_even": lambda: chain(
        (7, 7, 3), L.Conv2D(4, 4, 2, "same", use_bias=False)),
    "conv_softmax_activation": lambda: chain((6, 6, 3), L.Conv2D(5, 1, activation="softmax")),
    "conv1d_causal_dilated": lambda: chain((12, 5), L.Conv1D(4, 3, padding="causal",
                                                               dilation_rate=2)),
    "conv1d_same_stride2": lambda: chain((13, 5), L.Conv1D(4, 3, 2, "same", activation="tanh")),
    "conv3d_same": lambda: chain((5, 6, 7, 2), L.Conv3D(3, 3, 2, "same")),
    "depthwise_mult2_same_stride2": lambda: chain(
        (9, 9, 3), L.DepthwiseConv2D(3, 2, "same", depth_multiplier=2, activation="relu6")),
    "depthwise_dilated_valid": lambda: chain((10, 10, 4), L.DepthwiseConv2D(3, dilation_rate=2)),
    "separable_same_stride2": lambda: chain(
        (9, 9, 3), L.SeparableConv2D(5, 3, 2, "same", depth_multiplier=2, activation="swish")),
    "separable1d": lambda: chain((10, 3), L.SeparableConv1D(4, 3, padding="same")),
    "conv_transpose_same_s2": lambda: chain((5, 5, 3), L.Conv2DTranspose(4, 3, 2, "same")),
    "conv_transpose_same_k4_s2": lambda: chain((5, 5, 3), L.Conv2DTranspose(2, 4, 2, "same")),
    "conv_transpose_same_k1_s2": lambda: chain((4, 4, 3), L.Conv2DTranspose(2, 1, 2, "same")),
    "conv_transpose_valid": lambda: chain((4, 4, 3), L.Conv2DTranspose(2, 3, 2, "valid",
                                                                       activation="elu")),
    "dense_rank3_gelu": lambda: chain((5, 7), L.Dense(6, activation="gelu")),
    "flatten_dense_after_convs": lambda: chain(
        (6, 5, 3), L.Conv2D(4, 3), L.Flatten(), L.Dense(3, activation="softmax")),
    "reshape_after_conv": lambda: chain((4, 4, 3), L.Conv2D(6, 1), L.Reshape((8, 12)),
                                        L.Dense(2)),
    "permute_after_conv": lambda: chain((4, 5, 3), L.Conv2D(6, 1), L.Permute((2, 1, 3)),
                                        L.Conv2D(2, 2)),
    "repeat_vector": lambda: chain((4,), L.Dense(3), L.RepeatVector(5), L.Dense(2)),
    "bn_channels": lambda: conv_then((5, 5, 3), L.BatchNormalization(epsilon=1e-5)),
    "bn_axis1": lambda: chain((4, 6, 3), L.BatchNormalization(axis=1)),
    "bn_axis2_no_scale": lambda: conv_then((4, 6, 3), L.BatchNormalization(axis=2, scale=False)),
    "bn_rank2_no_center": lambda: chain((7,), L.BatchNormalization(center=False)),
    "layernorm_last": lambda: conv_then((4, 4, 6), L.LayerNormalization(epsilon=1e-6)),
    "layernorm_hw": lambda: chain((4, 5, 3), L.LayerNormalization(axis=[1, 2])),
    "layernorm_rms": lambda: chain((4, 6), L.LayerNormalization(rms_scaling=True)),
    "relu_max": lambda: conv_then((4, 4, 3), L.ReLU(max_value=0.5)),
    "relu_slope_threshold": lambda: conv_then((4, 4, 3), L.ReLU(negative_slope=0.1,
                                                                threshold=0.2)),
    "relu_all_options": lambda: conv_then((4, 4, 3), L.ReLU(1.0, 0.2, 0.1)),
    "leaky_relu": lambda: conv_then((4, 4, 3), L.LeakyReLU(negative_slope=0.15)),
    "prelu_shared_axes": lambda: conv_then((4, 4, 3), L.PReLU(shared_axes=[1, 2])),
    "prelu_full": lambda: chain((4, 3), L.PReLU()),
    "elu_alpha": lambda: conv_then((4, 4, 3), L.ELU(alpha=0.5)),
    "softmax_axis1": lambda: conv_then((4, 5, 3), L.Softmax(axis=1)),
    "softmax_last": lambda: conv_then((4, 5, 3), L.Softmax()),
    "softmax_rank2": lambda: chain((6,), L.Softmax()),
    "zero_padding_asym": lambda: conv_then((4, 4, 3), L.ZeroPadding2D(((1, 2), (0, 3)))),
    "cropping_asym": lambda: conv_then((6, 7, 3), L.Cropping2D(((1, 0), (2, 1)))),
    "padding_cropping_1d": lambda: chain((6, 3), L.ZeroPadding1D((2, 1)), L.Cropping1D((1, 0))),
    "maxpool_same_odd": lambda: chain((9, 9, 3), L.MaxPooling2D(3, 2, "same")),
    "avgpool_same_excludes_pad": lambda: chain((8, 8, 3), L.AveragePooling2D(3, 2, "same")),
    "avgpool_same_stride1": lambda: chain((5, 5, 2), L.AveragePooling2D(3, 1, "same")),
    "pool_valid": lambda: chain((9, 9, 3), L.MaxPooling2D(2), L.AveragePooling2D((2, 1))),
    "pool_1d": lambda: chain((9, 3), L.MaxPooling1D(2, padding="same"),
                             L.AveragePooling1D(2, padding="same")),
    "global_avg_keepdims": lambda: conv_then((5, 5, 3), L.GlobalAveragePooling2D(keepdims=True),
                                             L.Conv2D(2, 1)),
    "global_max": lambda: conv_then((5, 5, 3), L.GlobalMaxPooling2D()),
    "global_1d": lambda: chain((6, 3), L.GlobalAveragePooling1D()),
    "dropouts_identity": lambda: conv_then(
        (4, 4, 3), L.Dropout(0.5), L.SpatialDropout2D(0.5), L.GaussianNoise(1.0),
        L.GaussianDropout(0.3), L.AlphaDropout(0.2), L.ActivityRegularization(0.1),
        L.Identity()),
    "upsampling_nearest": lambda: conv_then((3, 4, 2), L.UpSampling2D((2, 3))),
    "upsampling_bilinear": lambda: conv_then((3, 4, 2), L.UpSampling2D(2,
                                                                        interpolation="bilinear")),
    "upsampling_1d": lambda: chain((3, 2), L.UpSampling1D(3)),
    "rescaling_scalar": lambda: chain((4, 4, 3), L.Rescaling(1 / 127.5, -1.0), L.Conv2D(2, 1)),
    "rescaling_per_channel": lambda: chain((4, 4, 3), L.Rescaling([0.5, 1.0, 2.0], [0.0, 1.0, 2.0])),
    "normalization_config": lambda: chain((4, 4, 3), L.Normalization(mean=[1.0, 2.0, 3.0],
                                                                    variance=[4.0, 0.25, 1.0])),
    "resizing_bilinear_down": lambda: conv_then((9, 7, 3), L.Resizing(4, 5)),
    "resizing_bilinear_up": lambda: conv_then((3, 4, 3), L.Resizing(7, 9)),
    "resizing_nearest": lambda: conv_then((6, 6, 3), L.Resizing(4, 9, interpolation="nearest")),
    # 1D and 3D forms of the families above
    "conv1d_transpose_same": lambda: chain((6, 3), L.Conv1DTranspose(4, 3, 2, "same",
                                                                     activation="relu")),
    "conv3d_transpose_same": lambda: chain((3, 4, 3, 2), L.Conv3DTranspose(3, 3, 2, "same")),
    "depthwise1d_mult2": lambda: chain((9, 3), L.DepthwiseConv1D(3, 2, "same",
                                                                 depth_multiplier=2)),
    "pool_3d": lambda: chain((5, 6, 7, 2), L.MaxPooling3D(2, padding="same"),
                             L.AveragePooling3D((2, 1, 2), padding="same")),
    "global_max_3d": lambda: chain((3, 4, 5, 3), L.Conv3D(3, 1), L.GlobalMaxPooling3D()),
    "global_avg_3d": lambda: chain((3, 4, 5, 3), L.GlobalAveragePooling3D()),
    "global_max_1d": lambda: chain((6, 3), L.Conv1D(4, 1), L.GlobalMaxPooling1D()),
    "padding_cropping_3d": lambda: chain((3, 4, 5, 2), L.ZeroPadding3D(((1, 0), (0, 2), (1, 1))),
                                         L.Cropping3D(((0, 1), (1, 0), (2, 0)))),
    "upsampling_3d": lambda: chain((2, 3, 2, 2), L.Conv3D(2, 1), L.UpSampling3D((2, 1, 3))),
    "spatial_dropouts_1d_3d": lambda: chain((4, 3), L.SpatialDropout1D(0.5), L.Reshape((2, 2, 3)),
                                            L.Reshape((1, 2, 2, 3)), L.SpatialDropout3D(0.5),
                                            L.Flatten()),
}

ACTIVATIONS = ["relu", "relu6", "sigmoid", "hard_sigmoid", "tanh", "softmax", "silu", "swish",
               "hard_silu", "gelu", "elu", "selu", "softplus", "softsign", "linear",
               "exponential", "leaky_relu", "mish", "log_softmax"]


def save(model, folder: Path, name: str, suffix: str = ".keras") -> Path:
    randomize_statistics(model)
    path = folder / f"{name}{suffix}"
    model.save(path)
    return path


def assert_matches(path: Path, low: float = -2.0, high: float = 2.0, layout: str = "nhwc"):
    report = compare_with_keras(path, low, high, layout)
    assert report.passed, report.table()


@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_matches_keras(case, tmp_path):
    keras.utils.set_random_seed(1)
    assert_matches(save(CASES[case](), tmp_path, case))


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_matches_keras(name, tmp_path):
    keras.utils.set_random_seed(2)
    model = conv_then((4, 5, 3), L.Activation(name), L.Dense(2, activation=name))
    assert_matches(save(model, tmp_path, name), -3.0, 3.0)


def test_ops_activations_and_constants(tmp_path):
    """keras.ops calls in a functional model: gelu(approximate), hard_sigmoid, x+3, x*c."""
    x = inputs = keras.Input((4, 4, 3))
    x = L.Conv2D(4, 1)(x)
    a = keras.ops.gelu(x, approximate=True)
    b = keras.ops.hard_sigmoid(x) * (1.0 / 6.0)
    c = 3.0 - keras.ops.relu(x + 3.0)
    model = keras.Model(inputs, [a, b, L.Add()([b, c])])
    assert_matches(save(model, tmp_path, "ops"), -4.0, 4.0)


def test_ops_elementwise(tmp_path):
    """keras.ops element-wise calls, each its own node in the functional graph (Mish is an
    operation of keras.activations: keras.activations.mish itself needs a concrete tensor)."""
    from keras.src.activations.activations import Mish

    x = inputs = keras.Input((4, 4, 3))
    x = L.Conv2D(4, 1)(x)
    y = L.Conv2D(4, 1)(inputs)
    ops = keras.ops
    unary = [ops.exp, ops.hard_silu, Mish(), ops.relu6, ops.selu, ops.sigmoid, ops.silu,
             ops.softplus, ops.softsign, ops.tanh]
    outs = [fn(x) for fn in unary]
    denominator = ops.exp(y) + 0.5
    outs += [ops.divide(x, denominator), ops.true_divide(y, denominator),
             ops.maximum(x, y), ops.minimum(x, y)]
    model = keras.Model(inputs, outs)
    assert_matches(save(model, tmp_path, "ops_elementwise"), -3.0, 3.0)


def test_application_layers(tmp_path):
    """Layers keras.applications define for themselves: InceptionResNetV2's scaled residual
    sum and ConvNeXt's stochastic depth (an identity at inference)."""
    from keras.src.applications.convnext import StochasticDepth
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    inputs = keras.Input((4, 4, 3))
    a, b = L.Conv2D(4, 1)(inputs), L.Conv2D(4, 3, padding="same")(inputs)
    x = CustomScaleLayer(0.17)([a, b])
    x = StochasticDepth(0.3)(L.Conv2D(4, 1)(x))
    assert_matches(save(keras.Model(inputs, x), tmp_path, "application_layers"))


def test_merge_layers(tmp_path):
    a, b, c = keras.Input((4, 4, 3)), keras.Input((4, 4, 3)), keras.Input((4, 4, 3))
    ca, cb = L.Conv2D(3, 1)(a), L.Conv2D(3, 1)(b)  # CF inputs mixed with a raw SOURCE one
    outs = [L.Add()([ca, cb, c]), L.Subtract()([ca, c]), L.Multiply()([ca, cb]),
            L.Average()([ca, cb]), L.Maximum()([ca, c]), L.Minimum()([ca, cb]),
            L.Concatenate()([ca, cb, c]), L.Concatenate(axis=1)([ca, c]),
            L.Concatenate(axis=2)([ca, cb])]
    model = keras.Model([a, b, c], outs)
    assert_matches(save(model, tmp_path, "merge"))


def test_dot_layers(tmp_path):
    a, b = keras.Input((5,)), keras.Input((5,))
    s, t = keras.Input((3, 4)), keras.Input((3, 4))
    model = keras.Model([a, b, s, t], [L.Dot(axes=1)([a, b]), L.Dot(axes=1, normalize=True)([a, b]),
                                       L.Dot(axes=(2, 2))([s, t]), L.Dot(axes=(1, 1))([s, t])])
    assert_matches(save(model, tmp_path, "dot"))


def test_normalization_adapted(tmp_path):
    norm = L.Normalization()
    norm.adapt(np.random.default_rng(0).normal(3.0, 2.0, (20, 4, 4, 3)).astype(np.float32))
    model = chain((4, 4, 3), norm, L.Conv2D(2, 1))
    assert_matches(save(model, tmp_path, "adapted"))


def build_multi_io_shared_nested():
    """Two inputs, a layer shared by both, a nested functional model called twice, a nested
    Sequential, and two outputs."""
    inner_in = keras.Input((8, 8, 4))
    t = L.Conv2D(4, 3, padding="same", name="ic")(inner_in)
    inner = keras.Model(inner_in, L.BatchNormalization(name="ibn")(t), name="inner")
    seq = keras.Sequential([L.Dense(5, activation="relu", name="sd1"), L.Dense(3, name="sd2")],
                           name="seq")
    a, b = keras.Input((8, 8, 3), name="a"), keras.Input((8, 8, 3), name="b")
    shared = L.Conv2D(4, 1, name="shared")
    x = L.Add()([inner(shared(a)), inner(shared(b))])
    pooled = L.GlobalAveragePooling2D(name="pooled")(x)
    return keras.Model([a, b], [seq(pooled), pooled], name="top")


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_multi_io_shared_nested(suffix, tmp_path):
    keras.utils.set_random_seed(3)
    path = save(build_multi_io_shared_nested(), tmp_path, "multi", suffix)
    assert_matches(path)
    conversion = convert_graph(read_keras(path))
    assert conversion.outputs == ["seq", "pooled"]
    assert [name for name, _, _ in conversion.inputs] == ["a", "b"]
    assert set(conversion.report.shared_modules) == {"shared", "inner/ic", "inner/ibn"}
    assert conversion.provenance["inner.ic.conv.weight"] == "inner/ic/kernel"


def test_sequential_top_level(tmp_path):
    model = keras.Sequential([keras.Input((6, 6, 2)), L.Conv2D(3, 3, activation="relu"),
                              L.MaxPooling2D(), L.Flatten(), L.Dense(4)], name="seq_model")
    assert_matches(save(model, tmp_path, "sequential"))


def test_nchw_layout(tmp_path):
    keras.utils.set_random_seed(4)
    model = chain((6, 6, 3), L.Conv2D(4, 3, 2, "same"), L.BatchNormalization())
    path = save(model, tmp_path, "nchw")
    assert_matches(path, layout="nchw")


def test_build_from_ir_rebuilds_same_module(tmp_path):
    keras.utils.set_random_seed(5)
    path = save(build_multi_io_shared_nested(), tmp_path, "ir")
    conversion = convert_graph(read_keras(path))
    ir = json.loads(json.dumps(conversion.ir_json))  # must survive JSON
    rebuilt = build_from_ir(ir)
    assert rebuilt.state_dict().keys() == conversion.net.state_dict().keys()
    rebuilt.load_state_dict(conversion.net.state_dict())
    x = [torch.randn(2, 8, 8, 3), torch.randn(2, 8, 8, 3)]
    for got, want in zip(rebuilt(*x), conversion.net(*x), strict=True):
        torch.testing.assert_close(got, want)
    assert len(json.dumps(ir)) < 20_000  # shapes and configs only, no weight data


def test_dynamic_input_size(tmp_path):
    """Unknown spatial size: SAME padding resolved at run time, any input size works."""
    model = chain((None, None, 3), L.Conv2D(4, 3, 2, "same"), L.MaxPooling2D(3, 2, "same"),
                  L.GlobalAveragePooling2D())
    path = save(model, tmp_path, "dynamic")
    conversion = convert_graph(read_keras(path))
    run = keras.models.load_model(path)
    for size in (9, 16):
        x = np.random.default_rng(size).normal(size=(1, size, size + 1, 3)).astype(np.float32)
        got = conversion.net(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(got, np.asarray(run(x)), atol=1e-5)


# ---- Keras 2 (tf.keras) files ------------------------------------------------------------

KERAS2_SCRIPT = """
import sys, torch, numpy as np, tf_keras as keras
L = keras.layers
keras.utils.set_random_seed(0)
inner_in = L.Input((4, 4, 4))
t = L.DepthwiseConv2D(3, padding="same", name="dw")(inner_in)
inner = keras.Model(inner_in, L.BatchNormalization(name="ibn")(t), name="inner")
a = L.Input((8, 8, 3), name="a")
x = L.Conv2D(4, 3, strides=2, padding="same", name="c1")(a)
x = L.BatchNormalization(name="bn")(x)
x = inner(x)
x = L.Activation("hard_sigmoid")(x) * 2.0 + x
x = L.LeakyReLU(alpha=0.2)(x)
x = L.SeparableConv2D(6, 3, padding="same", activation="swish")(x)
y = L.Dense(3, activation="softmax")(L.Flatten()(x))
seq = keras.Sequential([L.Dense(5, input_shape=(3,), activation="gelu"), L.Dense(2)], name="seq")
model = keras.Model(a, [y, seq(y)])
rng = np.random.default_rng(0)
for layer in model.layers + inner.layers:
    for w in layer.weights:
        n = w.name.split("/")[-1].split(":")[0]
        if n in ("moving_mean", "beta", "bias"):
            w.assign(rng.uniform(-0.5, 0.5, w.shape))
        elif n in ("moving_variance", "gamma"):
            w.assign(rng.uniform(0.5, 1.5, w.shape))
model.save(sys.argv[1])
"""


def test_keras2_h5(tmp_path):
    pytest.importorskip("tf_keras")
    path = tmp_path / "legacy_model.h5"
    subprocess.run([sys.executable, "-c", KERAS2_SCRIPT, str(path)], check=True,
                   capture_output=True)
    source = read_keras(path)
    assert source.graph.meta["keras_version"].startswith("2.")
    assert "inner/dw/depthwise_kernel" in source.tensors
    assert_matches(path)


# ---- refusals and corrupt files ------------------------------------------------------------

def test_lambda_and_custom_classes_are_listed_not_run(tmp_path):
    @keras.saving.register_keras_serializable(package="tests")
    class Doubler(L.Layer):
        def call(self, x):
            return x * 2

    x = inputs = keras.Input((4,))
    x = L.Lambda(lambda t: t + 1, name="plus_one")(x)
    x = Doubler(name="double_a")(x)
    x = Doubler(name="double_b")(x)
    path = save(keras.Model(inputs, L.Dense(2)(x)), tmp_path, "refused")
    source = read_keras(path)  # reading is fine: nothing is executed
    with pytest.raises(UnsupportedError) as err:
        convert_graph(source)
    message = str(err.value)
    assert "Lambda ×1 (plus_one)" in message
    assert "Doubler ×2 (double_a, double_b)" in message


@pytest.mark.parametrize("damage", ["truncate", "garbage", "no_weights", "bad_json"])
def test_corrupt_files_name_the_problem(damage, tmp_path):
    path = save(chain((4,), L.Dense(2)), tmp_path, "good")
    data = path.read_bytes()
    bad = tmp_path / f"bad_{damage}.keras"
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        bad.write_bytes(b"not a model at all" * 10)
    else:
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w") as dst:
            for item in src.infolist():
                if damage == "no_weights" and item.filename == "model.weights.h5":
                    continue
                content = src.read(item)
                if damage == "bad_json" and item.filename == "config.json":
                    content = content[:40]
                dst.writestr(item, content)
    with pytest.raises(SourceError) as err:
        read_keras(bad)
    assert str(bad) in str(err.value)


def test_truncated_h5(tmp_path):
    path = save(chain((4,), L.Dense(2)), tmp_path, "good", ".h5")
    bad = tmp_path / "cut.h5"
    bad.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(SourceError, match=r"cut\.h5"):
        read_keras(bad)


def test_conversion_imports_no_tensorflow(tmp_path):
    path = save(build_multi_io_shared_nested(), tmp_path, "notf")
    code = ("import sys; from tf2torch.sources.keras.reader import read_keras; "
            "from tf2torch.conversion.graph import convert_graph; "
            f"convert_graph(read_keras({str(path)!r})); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- registry ----------------------------------------------------------------------------

def test_registry_refuses_duplicates_and_names_missing_keys():
    registry = Registry()
    registry.register(("keras", "Dense", 1), lambda node, ctx: None)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(("keras", "Dense", 1), lambda node, ctx: None)
    with pytest.raises(UnsupportedError, match="'Conv2D'"):
        registry.get(("keras", "Conv2D", 1))


def test_every_registered_converter_has_a_real_name():
    for key in default_registry().keys("keras"):
        assert default_registry().get(key).__name__.startswith("convert_"), key


# ---- emitted code ------------------------------------------------------------------------

def test_emit_code_runs_standalone_and_matches_keras(tmp_path):
    from tf2torch.conversion.graph.codegen import emit_code

    keras.utils.set_random_seed(6)
    path = save(build_multi_io_shared_nested(), tmp_path, "emit")
    conversion = convert_graph(read_keras(path))
    source = emit_code(conversion, tmp_path / "model.py", tmp_path / "model.safetensors")
    text = source.read_text()
    assert "tf2torch" not in text.split("generated by tf2torch", 1)[1]
    assert "self.inner.ic = Conv(" in text and "shared_1 = self.shared(" in text
    x = np.random.default_rng(0).normal(size=(2, 2, 8, 8, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys, runpy, numpy as np, torch\n"
        "sys.modules['tf2torch'] = None  # the emitted file must not need tf2torch\n"
        f"ns = runpy.run_path({str(source)!r})\n"
        f"model = ns['load']({str(tmp_path / 'model.safetensors')!r})\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        "with torch.no_grad():\n"
        "    out = model(torch.from_numpy(x[0]), torch.from_numpy(x[1]))\n"
        f"np.savez({str(tmp_path / 'out.npz')!r}, *[o.numpy() for o in out])\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    got = np.load(tmp_path / "out.npz")
    want = keras.models.load_model(path)([x[0], x[1]])
    for i, ref in enumerate(want):
        np.testing.assert_allclose(got[f"arr_{i}"], np.asarray(ref), atol=1e-5, rtol=1e-5)
