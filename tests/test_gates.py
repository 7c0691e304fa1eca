"""Channel gates folded into the 1×1 matmuls they feed (`packages/gates.py`): the rewrite
against the network it replaces, where it applies and where it must not, and Keras'
squeeze-and-excitation blocks through the compiler's whole single-image chain against
Keras."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import tf2torch
from keras_models import assert_image_by_image_like_keras, randomize_statistics
from tf2torch.packages.gates import gates_into_weights
from tf2torch.packages.inference import inference_form
from tf2torch.packages.single_image import single_image_program, single_image_rewrites

aten = torch.ops.aten


class _Gated(nn.Module):
    """Squeeze-and-excitation, then a 1×1 projection of the gated activation."""

    def __init__(self, channels: int, out: int, gate_first: bool, leak: bool) -> None:
        super().__init__()
        self.squeeze, self.excite = nn.Conv2d(channels, 3, 1), nn.Conv2d(3, channels, 1)
        self.project = nn.Conv2d(channels, out, 1)
        self.gate_first, self.leak = gate_first, leak

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.excite(torch.relu(self.squeeze(x.mean((2, 3), True)))))
        gated = gate * x if self.gate_first else x * gate
        y = self.project(gated)
        return y + gated.mean() if self.leak else y  # `leak`: the product is read twice


def _folded(gm: torch.fx.GraphModule) -> int:
    """Matmuls whose weight is scaled at run time (what a folded gate leaves)."""
    return sum(1 for n in gm.graph.nodes if n.target is aten.bmm.default
               and n.args[1].op == "call_function" and n.args[1].target is aten.mul.Tensor)


@pytest.mark.parametrize(("channels", "out", "height", "gate_first", "leak", "folds"), [
    (20, 12, 6, False, False, 1),   # the weight (20×12) smaller than the map (20×42)
    (20, 12, 6, True, False, 1),    # gate · x as well as x · gate
    (17, 50, 6, False, False, 0),   # 50 outputs > 42 pixels: scaling the map is cheaper
    (20, 12, 6, False, True, 0),    # the product has another reader: it must stay
])
def test_a_gate_folds_only_where_it_pays_and_nothing_else_reads_it(
        channels, out, height, gate_first, leak, folds) -> None:
    torch.manual_seed(channels + out + gate_first + 2 * leak)
    net = _Gated(channels, out, gate_first, leak).eval()
    for conv in (net.squeeze, net.excite, net.project):  # gates away from 0.5
        nn.init.uniform_(conv.weight, -1.0, 1.0)
        nn.init.uniform_(conv.bias, -0.5, 0.5)
    x = torch.randn(1, channels, height, height + 1)
    with torch.no_grad():
        expected = net(x)
        gm = single_image_program(net, (x,)).module(check_guards=False)
        assert gates_into_weights(gm) == folds
        assert _folded(gm) == folds
        got = gm(x)
    assert (got - expected).abs().max() <= 1e-5 * max(1.0, expected.abs().max())


def _squeeze_excite(layers, x, squeezed: int):
    pooled = layers.GlobalAveragePooling2D(keepdims=True)(x)
    squeezed = layers.Conv2D(squeezed, 1, activation="swish")(pooled)
    return layers.Conv2D(x.shape[-1], 1, activation="sigmoid")(squeezed)


def test_keras_gates_fold_and_match_keras(tmp_path: Path) -> None:
    """EfficientNet's block as Keras writes it (depthwise, swish, squeeze-and-excitation,
    `Multiply`, 1×1 projection, BatchNorm with real-looking statistics), through the
    compiler's single-image chain (1×1 layers as matmuls, mirrored, depthwise sums, gates
    folded): the gate on the 16×16 map is folded into its 12-output projection, the one on
    the 4×4 map (20 outputs > 16 pixels) is kept, and the features match Keras'."""
    tf = pytest.importorskip("tensorflow")
    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(5)
    inp = tf.keras.Input((32, 32, 3))
    x = layers.Conv2D(24, 3, strides=2, padding="same", activation="swish")(inp)
    x = layers.DepthwiseConv2D(3, padding="same", activation="swish")(x)
    x = layers.Multiply()([x, _squeeze_excite(layers, x, 6)])
    x = layers.BatchNormalization()(layers.Conv2D(12, 1)(x))
    x = layers.Conv2D(16, 3, strides=4, padding="same", activation="swish")(x)
    x = layers.Multiply()([_squeeze_excite(layers, x, 4), x])
    model = tf.keras.Model(inp, layers.BatchNormalization()(layers.Conv2D(20, 1)(x)))
    randomize_statistics(model, seed=9, mild=True)
    model.save(tmp_path / "model.keras")
    tf2torch.convert(tmp_path / "model.keras", tmp_path / "pkg", verify=False)
    form = inference_form(tf2torch.load(tmp_path / "pkg").net, (32, 32, 3), governed=False,
                          input_layout="nhwc")
    program = single_image_program(form, (torch.zeros(1, 32, 32, 3),))
    gm = single_image_rewrites(program, "nhwc")
    assert sum(1 for n in gm.graph.nodes if n.target is aten.sigmoid.default) == 2
    assert _folded(gm) == 1
    images = np.random.default_rng(6).uniform(-4, 4, (3, 32, 32, 3)).astype(np.float32)
    assert_image_by_image_like_keras(gm, model, images, rel=1e-4, change_rel=1e-3)
