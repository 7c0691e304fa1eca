"""The single-image program's depthwise layers as sums over their taps
(`packages/depthwise.py`): every window geometry against the convolution it replaces, and
converted Keras networks, mirrored and rewritten as the compiler does, against Keras."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tf2torch
from keras_models import randomize_statistics
from tf2torch.packages.depthwise import depthwise_as_sums
from tf2torch.packages.inference import inference_form
from tf2torch.packages.mirror import mirrored_module

aten = torch.ops.aten
SIZE = 32


class _Depthwise(torch.nn.Module):
    def __init__(self, channels: int, kernel: int, stride: int, padding: int, dilation: int,
                 bias: bool) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(channels * 100 + kernel * 10 + stride)
        self.weight = torch.nn.Parameter(torch.randn(channels, 1, kernel, kernel,
                                                     generator=generator))
        self.bias = torch.nn.Parameter(torch.randn(channels, generator=generator)) \
            if bias else None
        self.geometry = (stride, padding, dilation, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stride, padding, dilation, groups = self.geometry
        return F.conv2d(x, self.weight, self.bias, stride, padding, dilation, groups)


def _depthwise_convolutions(gm: torch.fx.GraphModule) -> int:
    return sum(1 for n in gm.graph.nodes if n.target is aten.conv2d.default
               and n.args[1].op == "get_attr" and len(n.args) > 6 and n.args[6] > 1)


def test_every_window_geometry_computes_what_the_convolution_does() -> None:
    """Kernels 1-5, strides 1-3, paddings up to wider than the window (taps that read only
    padding), dilation, odd and even sizes down to one pixel, channels that are not a whole
    vector, with and without bias."""
    checked = 0
    for channels, kernel, stride, padding, dilation, height, bias in itertools.product(
            (5, 17), (1, 3, 5), (1, 2, 3), (0, 1, 4), (1, 2), (1, 6, 7), (True, False)):
        if height + 2 * padding < dilation * (kernel - 1) + 1:
            continue
        net = _Depthwise(channels, kernel, stride, padding, dilation, bias).eval()
        x = torch.randn(1, channels, height, height + 1)
        with torch.no_grad():
            gm = torch.export.export(net, (x,)).module(check_guards=False)
            assert depthwise_as_sums(gm) == 1
            assert _depthwise_convolutions(gm) == 0
            expected, got = net(x), gm(x)
        assert got.shape == expected.shape
        assert (got - expected).abs().max() <= 1e-4 * max(1.0, expected.abs().max()), \
            (channels, kernel, stride, padding, dilation, height, bias)
        checked += 1
    assert checked > 500


def _single_image(model, folder: Path) -> torch.fx.GraphModule:
    """The model converted by tf2torch, its single-image program exported, mirrored and
    its depthwise layers rewritten, as `tf2torch compile` does before compiling."""
    randomize_statistics(model, seed=7, mild=True)
    model.save(folder / "model.keras")
    tf2torch.convert(folder / "model.keras", folder / "pkg", verify=False)
    form = inference_form(tf2torch.load(folder / "pkg").net, (SIZE, SIZE, 3), governed=False,
                          input_layout="nhwc")
    with torch.no_grad():
        program = torch.export.export(form, (torch.zeros(1, SIZE, SIZE, 3),))
    return mirrored_module(program, "nhwc")


def _assert_matches_keras(gm, model) -> None:
    images = np.random.default_rng(3).uniform(-1, 1, (3, SIZE, SIZE, 3)).astype(np.float32)
    theirs = np.asarray(model(images, training=False))
    with torch.no_grad():
        ours = np.concatenate([gm(torch.from_numpy(images[i:i + 1])).numpy()
                               for i in range(len(images))])
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= 1e-4 * max(1.0, np.abs(theirs).max())


def test_keras_depthwise_layers_as_sums_match_keras(tmp_path) -> None:
    """SAME at stride 1 and 2 over even sizes (mirrored), 5×5, dilated, VALID at stride 2
    over an even size (whose mirrored windows need the explicit pad `mirror.py` inserts),
    without bias, channels not a whole vector; a depth multiplier of 2 stays a
    convolution."""
    tf = pytest.importorskip("tensorflow")
    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(31)
    inp = tf.keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(12, 3, padding="same", activation="relu")(inp)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="same")(x)
    x = layers.DepthwiseConv2D(5, strides=2, padding="same", use_bias=False)(x)
    x = layers.DepthwiseConv2D(3, dilation_rate=2, padding="same", activation="swish")(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="valid")(x)  # 8×8 → 3×3
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(x)
    model = tf.keras.Model(inp, layers.Dense(7)(layers.GlobalAveragePooling2D()(x)))
    gm = _single_image(model, tmp_path)
    assert depthwise_as_sums(gm) == 5
    assert sum(1 for n in gm.graph.nodes if n.target is aten.conv2d.default) == 2, \
        "the first layer and the depth multiplier's"
    _assert_matches_keras(gm, model)


@pytest.mark.parametrize(("name", "layers"), [("MobileNetV2", 17), ("EfficientNetB0", 16)])
def test_keras_applications_as_sums_match_keras(tmp_path, name, layers) -> None:
    """Whole applications with real-looking statistics, every depthwise layer rewritten
    (the sums read the 1×1 layer's bias and ReLU6, EfficientNet's swish), logits against
    Keras."""
    tf = pytest.importorskip("tensorflow")
    tf.keras.utils.set_random_seed(2)
    model = getattr(tf.keras.applications, name)(weights=None, input_shape=(SIZE, SIZE, 3),
                                                 classifier_activation=None)
    gm = _single_image(model, tmp_path)
    assert depthwise_as_sums(gm) == layers
    assert _depthwise_convolutions(gm) == 0
    _assert_matches_keras(gm, model)
