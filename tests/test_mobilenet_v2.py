"""TF-slim MobileNetV2 checkpoints → PyTorch, compared with TensorFlow's own outputs.

The reference numbers come from `tf.keras.applications.MobileNetV2` carrying the same
weights (see `tf2torch.references.standin`), never from tf2torch.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from tf2torch.conversion.convert import convert_zoo
from tf2torch.conversion.zoo.mobilenet_v2 import MobileNetV2Config, infer_config, make_divisible
from tf2torch.errors import MappingError
from tf2torch.sources import open_source

tf = pytest.importorskip("tensorflow")

LOGITS_TOL = 1e-4
PROBS_TOL = 1e-5


def torch_outputs(net: torch.nn.Module, nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.inference_mode():
        logits = net(torch.from_numpy(nhwc.transpose(0, 3, 1, 2).copy()))
    return logits.numpy(), torch.softmax(logits, -1).numpy()


def assert_matches_tf(net: torch.nn.Module, tests_h5: Path) -> None:
    with h5py.File(tests_h5) as f:
        random_input = f["RandomInput"][()]
        cases = {
            "zeros": (np.zeros((1, *random_input.shape[1:]), np.float32), f["LogitsForZeros"][()],
                      f["OutputForZeros"][()]),
            "random": (random_input, f["LogitsForRandom"][()], f["OutputForRandom"][()]),
        }
    for case, (inputs, ref_logits, ref_probs) in cases.items():
        logits, probs = torch_outputs(net, inputs)
        assert np.abs(logits - ref_logits).max() <= LOGITS_TOL, case
        assert np.abs(probs - ref_probs).max() <= PROBS_TOL, case
        assert (logits.argmax(-1) == ref_logits.argmax(-1)).all(), case


def test_standin_logits_depend_on_the_image(standin) -> None:
    """The fixture can tell a wrong backbone: TensorFlow's logits move with the input (a
    random deep net with arbitrary BN statistics collapses to one answer for every image)."""
    with h5py.File(standin(0.35, 96, tflite=False, pack=False).tests_h5) as f:
        random, zeros = f["LogitsForRandom"][()], f["LogitsForZeros"][()]
    assert np.abs(random[0] - random[1]).max() > 0.5 and np.abs(random[0] - zeros[0]).max() > 0.5


@pytest.mark.parametrize("scope", ["expanded_conv/depthwise", "expanded_conv_3/expand",
                                   "Conv_1"])
def test_one_wrong_backbone_weight_is_caught(standin, scope: str) -> None:
    """One early, middle or late conv off by 1%: the logits leave TensorFlow's bound."""
    release = standin(0.35, 96, tflite=False, pack=False)
    net = convert_zoo(open_source(release.prefix)).net
    module = dict(net.named_modules())["features." + scope.replace("/", ".") + ".conv"]
    with torch.no_grad():
        module.weight.mul_(1.01)
    with pytest.raises(AssertionError):
        assert_matches_tf(net, release.tests_h5)


@pytest.mark.parametrize(
    ("multiplier", "size"),
    [(1.4, 224), (1.3, 224), (1.0, 224), (1.0, 192), (0.75, 160), (0.5, 128), (0.35, 96)],
)
def test_checkpoint_matches_tensorflow(standin, multiplier: float, size: int) -> None:
    release = standin(multiplier, size, tflite=False, pack=False)
    conversion = convert_zoo(open_source(release.prefix))
    config = MobileNetV2Config(**conversion.config)
    assert config.depth_multiplier == multiplier
    assert config.input_size == size  # from the release name
    assert config.num_classes == 1001
    assert config.last_width == (1280 if multiplier <= 1 else make_divisible(1280 * multiplier))
    assert len(conversion.mapping.used) == 262
    assert_matches_tf(conversion.net, release.tests_h5)


@pytest.mark.slow
@pytest.mark.parametrize("size", [96, 128, 160, 192, 224])
@pytest.mark.parametrize("multiplier", [0.35, 0.5, 0.75, 1.0, 1.3, 1.4])
def test_every_released_variant(standin, multiplier: float, size: int) -> None:
    release = standin(multiplier, size, tflite=False, pack=False)
    assert_matches_tf(convert_zoo(open_source(release.prefix)).net, release.tests_h5)


def test_ema_shadows_preferred_and_recorded(standin) -> None:
    release = standin(1.0, 128, tflite=False, pack=False, ema=True, global_step=True)
    conversion = convert_zoo(open_source(release.prefix))
    report = conversion.mapping
    assert report.ema
    assert report.ignored["global_step"] == "training step counter"
    assert report.ignored["MobilenetV2/Conv/weights"] == "raw weight replaced by its EMA shadow"
    assert "MobilenetV2/Conv/weights/ExponentialMovingAverage" in report.used
    assert_matches_tf(conversion.net, release.tests_h5)

    raw = convert_zoo(open_source(release.prefix), use_ema=False)
    assert not raw.mapping.ema
    assert raw.mapping.ignored["MobilenetV2/Conv/weights/ExponentialMovingAverage"].startswith(
        "EMA shadow (opted out")
    with pytest.raises(AssertionError):  # the raw weights were perturbed: they must differ
        assert_matches_tf(raw.net, release.tests_h5)


def test_multi_shard_checkpoint(standin) -> None:
    release = standin(0.5, 128, tflite=False, pack=False, shards=3)
    assert len(list(release.prefix.parent.glob("*.data-*-of-00003"))) == 3
    assert_matches_tf(convert_zoo(open_source(release.prefix)).net, release.tests_h5)


@pytest.mark.parametrize("other_size", [192, 201])
def test_dynamic_padding_at_other_input_size(standin, other_size: int) -> None:
    """Built for 224, run at 192 and at odd 201: SAME pads must follow TF at every layer."""
    from tf2torch.references.standin import keras_mobilenet_v2

    release = standin(1.0, 224, tflite=False, pack=False)
    net = convert_zoo(open_source(release.prefix)).net
    built = keras_mobilenet_v2(1.0, 224, seed=0)
    keras = tf.keras.applications.MobileNetV2(
        input_shape=(other_size, other_size, 3), alpha=1.0, weights=None, classes=1001,
        classifier_activation=None)
    keras.set_weights(built.get_weights())
    images = np.random.default_rng(3).uniform(-1, 1, (2, other_size, other_size, 3))
    images = images.astype(np.float32)
    ref = keras(images, training=False).numpy()
    logits, _ = torch_outputs(net, images)
    assert np.abs(logits - ref).max() <= LOGITS_TOL


def test_config_inference_tells_close_multipliers_apart() -> None:
    """0.35 and 0.5 share the stem width; the later stages decide."""
    from tf2torch.conversion.zoo.mobilenet_v2 import MobileNetV2

    for multiplier in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4):
        net = MobileNetV2(MobileNetV2Config(depth_multiplier=multiplier))
        shapes = _slim_shapes(net)
        assert infer_config(shapes).depth_multiplier == multiplier


def test_unknown_widths_are_refused() -> None:
    from tf2torch.conversion.zoo.mobilenet_v2 import MobileNetV2

    shapes = _slim_shapes(MobileNetV2(MobileNetV2Config()))
    shapes["MobilenetV2/expanded_conv_3/project/weights"] = (1, 1, 144, 33)
    with pytest.raises(MappingError, match="match no depth multiplier"):
        infer_config(shapes)


def _slim_shapes(net: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """The slim names/shapes a checkpoint of `net` would have (inverse of the rules)."""
    shapes = {}
    for key, value in net.state_dict().items():
        parts = key.split(".")
        if parts[-1] == "weight" and value.ndim == 4:
            o, i, h, w = value.shape
            if parts[0] == "features":
                scope = "/".join(parts[1:-2])
                shapes[f"MobilenetV2/{scope}/weights"] = (h, w, i, o)
            else:
                shapes["MobilenetV2/Logits/Conv2d_1c_1x1/weights"] = (h, w, i, o)
    return shapes


def test_bn_momentum_and_epsilon_follow_tf() -> None:
    from tf2torch.conversion.zoo.mobilenet_v2 import MobileNetV2

    net = MobileNetV2(MobileNetV2Config(bn_decay=0.997))
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(m.eps == 1e-3 and abs(m.momentum - 0.003) < 1e-12 for m in bns)
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.2 for m in net.modules())


def test_module_names_mirror_slim_scopes() -> None:
    from tf2torch.conversion.zoo.mobilenet_v2 import MobileNetV2

    names = dict(MobileNetV2(MobileNetV2Config()).named_modules())
    for scope in ("features.Conv", "features.expanded_conv.depthwise",
                  "features.expanded_conv_16.project", "features.Conv_1", "Logits.Conv2d_1c_1x1"):
        assert scope in names
