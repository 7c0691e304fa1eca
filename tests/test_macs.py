"""Multiply-adds on the card come from shapes (no forward pass) and are TensorFlow's count."""

from __future__ import annotations

import pytest

import tf2torch

MAC_OPS = {"Conv2D", "DepthwiseConv2dNative", "MatMul"}


def tensorflow_macs(graph_def, input_name: str, shape: tuple[int, ...]) -> int:
    """TensorFlow's profiler on the graph with a batch-1 input: its float ops (2 per
    multiply-add) of convolutions and matrix products."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, shape, name="fixed_input")
        tf.compat.v1.import_graph_def(graph_def, {input_name: x}, name="")
        options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        options["output"] = "none"
        profile = tf.compat.v1.profiler.profile(graph, options=options)
    flops = sum(node.float_ops for node in profile.children
                if graph.get_operation_by_name(node.name).type in MAC_OPS)
    return flops // 2


def test_zoo_multiply_adds_are_tensorflows(standin, tmp_path, monkeypatch) -> None:
    from tf2torch.conversion.zoo import mobilenet_v2
    from tf2torch.references.tensorflow import load_graph_def

    release = standin(0.35, 96)
    ran = []
    monkeypatch.setattr(mobilenet_v2.MobileNetV2, "forward", lambda *a: ran.append(a))
    result = tf2torch.convert(release.archive, tmp_path / "pkg", verify=False)
    assert ran == []  # counted without running the net
    frozen = next(release.prefix.parent.glob("*_frozen.pb"))
    graph_def = load_graph_def(frozen)
    placeholder = next(n.name for n in graph_def.node if n.op == "Placeholder")
    assert result.card.multiply_adds == tensorflow_macs(graph_def, placeholder, (1, 96, 96, 3))


def test_graph_multiply_adds_are_tensorflows(tmp_path) -> None:
    tf = pytest.importorskip("tensorflow")
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.Conv2D(16, 3, dilation_rate=2)(x)
    # (no SeparableConv2D: TF's profiler counts nothing for its depthwise half)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5)(x)
    model = keras.Model(inputs, outputs)
    path = tmp_path / "m.keras"
    model.save(path)
    result = tf2torch.convert(path, tmp_path / "pkg", verify=False)
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    function = tf.function(lambda t: model(t)).get_concrete_function(
        tf.TensorSpec((1, 32, 32, 3), tf.float32))
    graph_def = convert_variables_to_constants_v2(function).graph.as_graph_def()
    placeholder = next(n.name for n in graph_def.node if n.op == "Placeholder")
    expected = tensorflow_macs(graph_def, placeholder, (1, 32, 32, 3))
    assert expected > 0 and result.card.multiply_adds == expected
