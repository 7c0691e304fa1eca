"""Per-layer comparison: deliberately broken ports are caught, at the right layer, for the
right reason; a correct port passes everywhere. The reference is TensorFlow running the
stand-in release (its Keras model, its frozen graph under slim's node names, its .tflite) or
a small Keras model, never tf2torch."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from tf2torch.conversion.convert import Conversion, convert_zoo
from tf2torch.sources import open_source
from tf2torch.verification.layerwise import (
    FrozenGraphLayers,
    KerasLayers,
    LayerReport,
    Tap,
    TfliteLayers,
    compare_layers,
    standin_naming,
)
from tf2torch.verification.layerwise.taps import CONV, DENSE, FLATTEN
from tf2torch.verification.report import standard_inputs

tf = pytest.importorskip("tensorflow")

MULTIPLIER, SIZE = 0.35, 96


@pytest.fixture(scope="module")
def port(standin) -> Conversion:
    release = standin(MULTIPLIER, SIZE, tflite=False, pack=False)
    return convert_zoo(open_source(release.prefix))


@pytest.fixture(scope="module", params=["keras", "frozen_graph"])
def reference(request, standin) -> KerasLayers | FrozenGraphLayers:
    """The release's Keras model (paired via the stand-in's layer table) or its frozen graph
    (paired by slim node names, as a published release would be)."""
    if request.param == "frozen_graph":
        release = standin(MULTIPLIER, SIZE, tflite=False, pack=False)
        return FrozenGraphLayers(next(release.prefix.parent.glob("*_frozen.pb")))
    from tf2torch.references.standin import keras_mobilenet_v2

    model = keras_mobilenet_v2(MULTIPLIER, SIZE)  # seeded: the release's own model
    return KerasLayers(model, standin_naming(model))


@pytest.fixture(scope="module")
def inputs() -> dict[str, np.ndarray]:
    return standard_inputs((SIZE, SIZE, 3), batch=1)


def broken(port: Conversion, damage) -> Conversion:
    net = copy.deepcopy(port.net)
    damage(net)
    return Conversion(net, port.architecture, port.config, port.source, port.input_shape,
                      port.layout, port.mapping, port.provenance, port.num_classes)


def test_correct_port_has_no_failing_layer(port, reference, inputs, tmp_path) -> None:
    report = compare_layers(port, reference, inputs)
    assert report.passed and report.first_failure is None and report.diagnosis is None
    assert len(report.rows) > 100  # conv, BN, unit and block outputs all paired
    names = [r.net for r in report.rows]
    # execution order: a conv before its BN, inner results before their block's
    assert names.index("features.Conv.conv") < names.index("features.Conv.bn")
    assert names.index("features.expanded_conv_4.project.bn") < names.index(
        "features.expanded_conv_4")
    data = json.loads(report.to_json())
    assert data["passed"] and data["layers"][0]["shape"] == [SIZE // 2, SIZE // 2, 16]
    assert "verdict: PASS" in report.table()
    assert report.plot(tmp_path / "ok.png").stat().st_size > 10_000


def test_frozen_graph_pairs_by_slim_node_names(port, standin, inputs) -> None:
    release = standin(MULTIPLIER, SIZE, tflite=False, pack=False)
    report = compare_layers(port, FrozenGraphLayers(next(release.prefix.parent.glob("*.pb"))),
                            inputs)
    refs = {r.net: r.ref for r in report.rows}
    assert refs["features.expanded_conv_4.depthwise.conv"] == \
        "MobilenetV2/expanded_conv_4/depthwise/depthwise"
    assert refs["features.Conv.bn"] == "MobilenetV2/Conv/BatchNorm/FusedBatchNormV3"
    assert refs["features.Conv"] == "MobilenetV2/Conv/Relu6"  # a unit's exit
    assert refs["features.expanded_conv_4"] == "MobilenetV2/expanded_conv_4/output"
    assert refs[""] == "MobilenetV2/Logits/output"  # the softmax's input
    assert not report.unpaired  # every conv, BN, unit and block has its node


def test_tflite_reference_pairs_by_tensor_names(standin, port, inputs) -> None:
    release = standin(MULTIPLIER, SIZE)
    report = compare_layers(port, TfliteLayers(release.tflite), inputs)
    assert report.passed
    paired = {r.net for r in report.rows}
    # fused conv+BN+ReLU ops expose unit and block outputs, not a conv before its BN
    assert {"features.expanded_conv_4", "features.expanded_conv_4.expand", ""} <= paired
    assert "features.Conv.conv" not in paired


def assert_first_failure(report: LayerReport, net: str, cause: str) -> None:
    first = report.first_failure
    assert first is not None, report.table()
    assert first.net == net, report.table()
    assert cause in report.diagnosis, report.diagnosis
    assert "FIRST FAIL" in report.table()


def test_symmetric_padding_at_stride_2_is_named(port, reference, inputs) -> None:
    def damage(net: nn.Module) -> None:  # (1, 1) all round instead of TF's (0, 1)
        net.features.expanded_conv_1.depthwise.pad = nn.ZeroPad2d(1)

    report = compare_layers(broken(port, damage), reference, inputs)
    assert_first_failure(report, "features.expanded_conv_1.depthwise.conv", "SAME padding")


def test_bn_epsilon_1e5_is_named(port, reference, inputs) -> None:
    def damage(net: nn.Module) -> None:
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eps = 1e-5

    report = compare_layers(broken(port, damage), reference, inputs)
    assert_first_failure(report, "features.Conv.bn", "BatchNorm epsilon")


def test_one_wrong_batchnorm_is_not_called_epsilon(port, reference, inputs) -> None:
    def damage(net: nn.Module) -> None:
        with torch.no_grad():
            net.features.expanded_conv_1.expand.bn.running_mean.add_(0.05)

    report = compare_layers(broken(port, damage), reference, inputs)
    assert_first_failure(report, "features.expanded_conv_1.expand.bn",
                         "this BatchNorm's statistics")


def test_one_transposed_depthwise_kernel_names_its_block(port, reference, inputs) -> None:
    def damage(net: nn.Module) -> None:
        conv = net.features.expanded_conv_4.depthwise.conv
        with torch.no_grad():
            conv.weight.copy_(conv.weight.transpose(2, 3).clone())

    report = compare_layers(broken(port, damage), reference, inputs)
    assert_first_failure(report, "features.expanded_conv_4.depthwise.conv", "own weights")
    assert all(r.passed for r in report.rows[: report.rows.index(report.first_failure)])


def test_logits_off_by_one_class_is_named(port, reference, inputs) -> None:
    def damage(net: nn.Module) -> None:
        conv = net.Logits.Conv2d_1c_1x1
        with torch.no_grad():
            conv.weight.copy_(conv.weight.roll(1, 0).clone())
            conv.bias.copy_(conv.bias.roll(1, 0).clone())

    report = compare_layers(broken(port, damage), reference, inputs)
    # the frozen graph exposes the classifier conv's BiasAdd, a Keras model only the logits
    first = "Logits.Conv2d_1c_1x1" if isinstance(reference, FrozenGraphLayers) else ""
    assert_first_failure(report, first, "background class")
    assert report.first_failure.shift == 1


# --- a small graph: conv → Flatten → Dense, ported by hand ------------------------------

class SmallPort(nn.Module):
    def __init__(self, model, flatten_nhwc: bool) -> None:
        super().__init__()
        kernel, bias = model.get_layer("conv").get_weights()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.conv.weight.data = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
        self.conv.bias.data = torch.from_numpy(bias)
        self.flatten = _Flatten(flatten_nhwc)
        weights, bias = model.get_layer("dense").get_weights()
        self.dense = nn.Linear(*weights.shape)
        self.dense.weight.data = torch.from_numpy(weights.T.copy())
        self.dense.bias.data = torch.from_numpy(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(self.flatten(self.conv(x)))


class _Flatten(nn.Module):
    def __init__(self, nhwc: bool) -> None:
        super().__init__()
        self.nhwc = nhwc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.permute(0, 2, 3, 1) if self.nhwc else x).flatten(1)


@pytest.fixture(scope="module")
def small_keras():
    tf.keras.utils.set_random_seed(1)
    inp = tf.keras.Input((6, 6, 3))
    x = tf.keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    x = tf.keras.layers.Flatten(name="flatten")(x)
    out = tf.keras.layers.Dense(5, name="dense")(x)
    return tf.keras.Model(inp, out)


SMALL_TAPS = [Tap("conv", "conv", CONV), Tap("flatten", "flatten", FLATTEN, layout="flat"),
              Tap("dense", "dense", DENSE, layout="flat")]


@pytest.mark.parametrize("flatten_nhwc", [True, False])
def test_flatten_order(small_keras, flatten_nhwc: bool) -> None:
    net = SmallPort(small_keras, flatten_nhwc).eval()
    report = compare_layers(net, KerasLayers(small_keras), standard_inputs((6, 6, 3)),
                            taps=SMALL_TAPS)
    assert [r.net for r in report.rows] == ["conv", "flatten", "dense"]
    if flatten_nhwc:
        assert report.passed, report.table()
    else:
        assert_first_failure(report, "flatten", "element order")
        assert report.first_failure.same_values  # same numbers, other order


def test_bare_module_needs_taps(small_keras) -> None:
    with pytest.raises(ValueError, match="explicit taps"):
        compare_layers(SmallPort(small_keras, True), KerasLayers(small_keras),
                       standard_inputs((6, 6, 3)))
