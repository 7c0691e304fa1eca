"""Per-layer comparison on the graph path: fx module ↔ IR node ↔ Keras layer, by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tf2torch.conversion.convert import convert_source
from tf2torch.sources import open_source
from tf2torch.verification.checks import graph_inputs
from tf2torch.verification.layerwise import KerasLayers, compare_layers

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def conv_flatten_dense(tmp_path_factory):
    tf.keras.utils.set_random_seed(3)
    inp = tf.keras.Input((16, 16, 3))
    x = tf.keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu",
                               name="conv2d")(inp)
    x = tf.keras.layers.BatchNormalization(name="batch_normalization")(x)
    out = tf.keras.layers.Dense(5, name="dense")(tf.keras.layers.Flatten(name="flatten")(x))
    model = tf.keras.Model(inp, out)
    path = tmp_path_factory.mktemp("k") / "cfd.keras"
    model.save(path)
    return path, model


def _report(path, model, conversion):
    inputs = {case: arrays[0] for case, arrays in graph_inputs(conversion, 0, 1).items()}
    return compare_layers(conversion, KerasLayers(model), inputs)


def test_correct_graph_port_passes_every_layer(conv_flatten_dense) -> None:
    path, model = conv_flatten_dense
    report = _report(path, model, convert_source(open_source(path)))
    assert report.passed and [r.ref for r in report.rows] == [
        "conv2d", "batch_normalization", "flatten", "dense"]


def test_flatten_without_its_permute_is_named_with_element_order(conv_flatten_dense) -> None:
    """Remove the NCHW→NHWC permute the lowering puts before Flatten: Keras's order is lost."""
    path, model = conv_flatten_dense
    conversion = convert_source(open_source(path))
    graph = conversion.net.graph
    flatten = next(n for n in graph.nodes if n.op == "call_module" and n.name == "flatten")
    permute = flatten.args[0]
    assert permute.op == "call_method" and permute.target == "permute"
    flatten.replace_input_with(permute, permute.args[0])
    graph.erase_node(permute)
    conversion.net.recompile()

    report = _report(path, model, conversion)
    first = report.first_failure
    assert first is not None and first.ref == "flatten"
    assert all(r.passed for r in report.rows[: report.rows.index(first)])
    assert "element order" in report.diagnosis
    assert np.isfinite(first.max_abs)


@pytest.fixture(scope="module")
def two_class_heads(tmp_path_factory):
    """A small detector-like net: a two-class score head (N, 2) and a one-score-per-anchor
    head (N, anchors, 1), as face detectors have; the classifier rules must not crash on them."""
    tf.keras.utils.set_random_seed(5)
    inp = tf.keras.Input((16, 16, 3))
    x = tf.keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inp)
    x = tf.keras.layers.BatchNormalization(name="bn")(x)
    x = tf.keras.layers.Conv2D(8, 3, strides=2, padding="same", name="body")(x)
    scores = tf.keras.layers.Conv2D(1, 1, name="anchor_scores")(x)
    anchors = tf.keras.layers.Reshape((64, 1), name="anchors")(scores)
    pooled = tf.keras.layers.GlobalAveragePooling2D(name="pool")(x)
    classes = tf.keras.layers.Dense(2, name="classes")(pooled)
    model = tf.keras.Model(inp, [classes, anchors])
    for layer in model.layers:  # random BN statistics, non-zero biases
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            layer.set_weights([np.random.uniform(0.5, 1.5, w.shape).astype("float32")
                               for w in layer.get_weights()])
    path = tmp_path_factory.mktemp("k") / "heads.keras"
    model.save(path)
    return path, model


@pytest.mark.parametrize("damaged", ["body", "classes", "anchor_scores"])
def test_two_class_heads_one_conv_off_by_one_percent_is_diagnosed(two_class_heads,
                                                                  damaged) -> None:
    """A port that really diverges (one layer's weights scaled by 1.01) on small heads is
    diagnosed at that layer, not crashed on (the background-class rule once took the max of
    an empty slice of two classes)."""
    path, model = two_class_heads
    conversion = convert_source(open_source(path))
    assert _report(path, model, conversion).passed
    weight = next(p for name, p in conversion.net.named_parameters()
                  if name.startswith(f"{damaged}.") and p.ndim > 1)
    with torch.no_grad():
        weight.mul_(1.01)
    report = _report(path, model, conversion)
    first = report.first_failure
    assert first is not None and first.ref == damaged, [(r.ref, r.passed) for r in report.rows]
    assert all(r.passed for r in report.rows[: report.rows.index(first)])
    assert report.diagnosis is not None and "background" not in report.diagnosis
    assert np.isfinite(first.max_abs) and first.shift == 0
