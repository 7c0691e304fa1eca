"""The compiled program's mirroring (`packages/mirror.py`): TF's after-only SAME padding
becomes symmetric padding on mirrored images, with no padded copy — checked against Keras's
own outputs, on networks it must mirror and on ones it must refuse to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import tf2torch
from keras_models import randomize_statistics
from tf2torch.packages.inference import inference_form
from tf2torch.packages.mirror import mirrored_module
from tf2torch.packages.reversal import Window

tf = pytest.importorskip("tensorflow")
layers = tf.keras.layers
aten = torch.ops.aten
SIZE = 32


def _trunk(inp):
    """Every after-only pad TF and Keras write: SAME stride 2 (3×3 and 5×5, where TF pads 1
    before and 2 after), Keras' ZeroPadding2D((0, 1)) before a valid stride-2 depthwise, a
    SAME max pool; and SAME stride 1, a residual Add, BatchNorm with real statistics."""
    x = layers.Conv2D(8, 3, strides=2, padding="same")(inp)
    x = layers.ReLU(6.0)(layers.BatchNormalization()(x))
    skip = x
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = layers.Add()([layers.Conv2D(8, 1)(x), skip])
    x = layers.ZeroPadding2D(((0, 1), (0, 1)))(layers.Conv2D(16, 1, activation="relu")(x))
    x = layers.DepthwiseConv2D(3, strides=2, padding="valid")(x)
    x = layers.DepthwiseConv2D(5, strides=2, padding="same", activation="swish")(x)
    return layers.MaxPool2D(3, strides=2, padding="same")(x)


def _save(model, folder: Path) -> Path:
    randomize_statistics(model, seed=5)  # statistics far from the identity, biases of either sign
    path = folder / "model.keras"
    model.save(path)
    return path


def _mirrored(model, folder: Path) -> torch.fx.GraphModule:
    """The model converted by tf2torch, its inference form exported and handed to the
    compiler's rewrite (any batch size, as the any-batch program)."""
    tf2torch.convert(_save(model, folder), folder / "pkg", verify=False)
    form = inference_form(tf2torch.load(folder / "pkg").net, (SIZE, SIZE, 3), governed=False,
                          input_layout="nhwc")
    batch = torch.export.Dim("batch", min=1, max=64)
    with torch.no_grad():
        program = torch.export.export(form, (torch.zeros(2, SIZE, SIZE, 3),),
                                      dynamic_shapes=(({0: batch},),))
    return mirrored_module(program, "nhwc")


def _targets(gm: torch.fx.GraphModule) -> list:
    return [n.target for n in gm.graph.nodes if n.op == "call_function"]


def _assert_matches_keras(gm, model) -> None:
    images = np.random.default_rng(9).uniform(-1, 1, (3, SIZE, SIZE, 3)).astype(np.float32)
    with torch.no_grad():
        ours = gm(torch.from_numpy(images))
    theirs = model(images, training=False)
    ours = ours if isinstance(ours, list | tuple) else [ours]
    theirs = theirs if isinstance(theirs, list | tuple) else [theirs]
    for mine, keras in zip(ours, theirs, strict=True):
        keras = np.asarray(keras)
        assert mine.shape == keras.shape
        assert np.abs(mine.numpy() - keras).max() <= 1e-4 * max(1.0, np.abs(keras).max())


def test_mirrored_program_has_no_padded_copy_and_matches_keras(tmp_path) -> None:
    """Logits and a spatial map (flipped back on the way out) both match Keras, and the only
    copies left are the input's flip and the map's."""
    tf.keras.utils.set_random_seed(21)
    inp = tf.keras.Input((SIZE, SIZE, 3))
    x = _trunk(inp)
    logits = layers.Dense(5)(layers.GlobalAveragePooling2D()(x))
    spatial = layers.Conv2D(4, 1)(x)
    model = tf.keras.Model(inp, [logits, spatial])
    gm = _mirrored(model, tmp_path)
    targets = _targets(gm)
    assert aten.pad.default not in targets and aten.constant_pad_nd.default not in targets
    assert targets.count(aten.flip.default) == 2, "the input's flip and the map's"
    _assert_matches_keras(gm, model)


def _flatten_beside(inp):
    """A Flatten output of 4×4 pixels mixes H and W with channels: it does not commute with
    the mirroring, so its input is flipped back (as a detection head's anchors would be)."""
    x = layers.Conv2D(8, 3, padding="valid")(layers.ZeroPadding2D(1)(inp))
    pixels = layers.Flatten()(layers.AveragePooling2D(8)(x))
    return [layers.Dense(5)(layers.GlobalAveragePooling2D()(_trunk(x))), pixels]


def _resnet_stem(inp):
    """ResNet's stem (its convolution at stride 1 here, so the trunk keeps its sizes):
    ZeroPadding2D(1) then a valid 3×3 stride-2 max pool over an even size, whose windows do
    not mirror onto themselves (they reach one pad row before the first row, none after the
    last): nothing is mirrored."""
    x = layers.Conv2D(8, 7, padding="valid")(layers.ZeroPadding2D(3)(inp))
    x = layers.MaxPool2D(3, strides=2)(layers.ZeroPadding2D(1)(layers.ReLU()(x)))
    return layers.Dense(5)(layers.GlobalAveragePooling2D()(_trunk(x)))


@pytest.mark.parametrize(("build", "flips", "pads_left"), [
    (_flatten_beside, 2, 0),  # the input's flip, the pooled pixels' flip back before Flatten
    (_resnet_stem, 0, 5),  # the trunk's four after-only pads, the stem pool's zero pad
])
def test_ops_that_do_not_commute_get_unmirrored_inputs_or_stop_the_mirroring(
        tmp_path, build, flips, pads_left) -> None:
    """Either way a symmetric ZeroPadding2D before a valid convolution folds into the
    convolution, and the outputs match Keras."""
    tf.keras.utils.set_random_seed(22)
    inp = tf.keras.Input((SIZE, SIZE, 3))
    model = tf.keras.Model(inp, build(inp))
    gm = _mirrored(model, tmp_path)
    targets = _targets(gm)
    assert targets.count(aten.flip.default) == flips
    assert sum(t in (aten.pad.default, aten.constant_pad_nd.default) for t in targets) \
        == pads_left
    _assert_matches_keras(gm, model)


@pytest.mark.parametrize("name", ["MobileNetV2", "EfficientNetB0"])
def test_keras_applications_run_mirrored_and_match_keras(tmp_path, name) -> None:
    """Whole applications (EfficientNet's squeeze-excite: a mean kept as 1×1, broadcast
    back over the mirrored pixels), with real-looking statistics, logits against Keras."""
    tf.keras.utils.set_random_seed(1)
    model = getattr(tf.keras.applications, name)(weights=None, input_shape=(SIZE, SIZE, 3),
                                                 classifier_activation=None)
    randomize_statistics(model, seed=1, mild=True)
    gm = _mirrored(model, tmp_path)
    targets = _targets(gm)
    assert targets.count(aten.flip.default) == 1, "only the input is flipped"
    assert aten.pad.default not in targets and aten.constant_pad_nd.default not in targets
    _assert_matches_keras(gm, model)


@pytest.mark.parametrize(("length", "kernel", "before", "after", "symmetric"), [
    (224, 3, 0, 1, 1),   # TF SAME, stride 2, even size: one row after → one row each side
    (224, 5, 1, 2, 2),   # 5×5: 1 before, 2 after → 2 each side
    (225, 3, 1, 1, 1),   # odd size: TF already pads symmetrically
    (7, 3, 0, 1, 0),     # odd size: no window reads the pad after, none is needed
])
def test_windows_mirror_onto_symmetric_padding(length, kernel, before, after,
                                               symmetric) -> None:
    window = Window(length, kernel, 2, before, after)
    mirrored = window.mirrored()
    assert mirrored.outputs == window.outputs
    assert mirrored.symmetric() == symmetric


def test_pads_of_other_values_stay_where_torch_would_pad_differently(tmp_path) -> None:
    """A TensorFlow graph's constant pad of 1.5 before a stride-2 convolution is not folded
    (a convolution pads with zeros), only mirrored; a SAME max pool's pad of -inf folds into
    the pool (which pads with -inf). Checked against TensorFlow."""
    from tests.tf_op_models import OpCase, write_graph

    from tf2torch.conversion.convert import convert_source
    from tf2torch.sources import open_source
    from tf2torch.verification.checks import graph_reference

    def build(tf, rng):
        kernels = [rng.normal(0, 0.3, shape).astype(np.float32)
                   for shape in ((3, 3, 4, 16), (3, 3, 16, 16), (3, 3, 16, 16))]

        def body(x):
            x = tf.nn.conv2d(x, kernels[0], 1, "SAME")
            x = tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]], constant_values=1.5)
            x = tf.nn.conv2d(x, kernels[1], 2, "VALID")
            x = tf.nn.max_pool2d(tf.nn.conv2d(x, kernels[2], 2, "SAME"), 3, 2, "SAME")
            return tf.reduce_mean(x, [1, 2])
        return body

    path = tmp_path / "pads.pb"
    write_graph(OpCase("pads", build, ((None, SIZE, SIZE, 4),)), path)
    source = open_source(path)
    form = inference_form(convert_source(source).net, (SIZE, SIZE, 4), governed=False,
                          input_layout="nhwc")
    with torch.no_grad():
        gm = mirrored_module(torch.export.export(form, (torch.zeros(1, SIZE, SIZE, 4),)), "nhwc")
    pads = [n for n in gm.graph.nodes if n.target in (aten.pad.default,
                                                      aten.constant_pad_nd.default)]
    assert aten.flip.default in _targets(gm)
    assert [tuple(n.args[2:]) for n in pads] == [("constant", 1.5)]
    assert list(pads[0].args[1]) == [1, 0, 1, 0], "mirrored: the pad comes before"
    x = np.random.default_rng(3).uniform(-1, 1, (1, SIZE, SIZE, 4)).astype(np.float32)
    with torch.no_grad():
        ours = gm(torch.from_numpy(x))
    theirs = next(iter(graph_reference(source).run([x]).values()))
    assert np.abs(ours.numpy() - theirs).max() <= 1e-4 * max(1.0, np.abs(theirs).max())
