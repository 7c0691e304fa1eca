"""Per-layer comparison on the graph path: fx module ↔ IR node ↔ Keras layer, by name."""

from __future__ import annotations

import numpy as np
import pytest

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
