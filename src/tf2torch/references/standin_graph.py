"""The stand-in release's frozen graph, built op by op under TF-slim's node names.

A published `mobilenet_v2_*_frozen.pb` is a TF1 graph whose nodes carry slim's scopes
(`MobilenetV2/expanded_conv_3/depthwise/depthwise`, `…/project/BatchNorm/FusedBatchNormV3`,
`MobilenetV2/expanded_conv_3/output`, `MobilenetV2/Logits/Conv2d_1c_1x1/BiasAdd`), and the
`.tflite` converted from it keeps those names on its tensors. Freezing the Keras model would
give Keras's names and ops (BatchNorm as mul/add, the classifier as a MatMul) instead, so the
stand-in rebuilds the same network in plain TensorFlow ops from the Keras model's layers,
checks it against the Keras model, and freezes that.

Needs TensorFlow (the `[tf]` extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

TOP = "MobilenetV2"
SLIM_BN_EPSILON = 1e-3


def slim_graph_def(model: Any, scope_of: Any) -> Any:
    """A TF1 GraphDef of `model` (Keras MobileNetV2) with slim's node names.

    `scope_of(keras layer name)` gives the layer's slim scope inside `MobilenetV2/` (None for
    layers without weights). Input `input` (NHWC, any batch), output
    `MobilenetV2/Predictions/Softmax`; logits are `MobilenetV2/Logits/output`.
    """
    import tensorflow as tf

    weights = {layer.name: layer.get_weights() for layer in model.layers}  # eagerly, first
    graph = tf.Graph()
    with graph.as_default():
        size = model.input_shape[1]
        image = tf.compat.v1.placeholder(tf.float32, (None, size, size, 3), name="input")
        built: dict[int, tuple[Any, str]] = {}  # id(Keras output) → (tensor, its unit scope)
        consumers = _consumers(model.layers)
        for layer in model.layers:
            kind = type(layer).__name__
            if kind == "InputLayer":
                built[id(layer.output)] = (image, TOP)
                continue
            inputs = [built[id(t)] for t in _as_list(layer.input)]
            tensor, unit = inputs[0]
            scope = scope_of(layer.name)
            if kind == "ZeroPadding2D":  # slim pads with SAME: the same (0, 1) / (1, 1) pads
                out = (tensor, unit)
            elif kind in ("Conv2D", "DepthwiseConv2D"):
                out = (_conv(tf, layer, weights[layer.name], tensor, f"{TOP}/{scope}"),
                       f"{TOP}/{scope}")
            elif kind == "BatchNormalization":
                out = (_batch_norm(tf, layer, weights[layer.name], tensor, f"{TOP}/{scope}"),
                       unit)
                block = unit.rsplit("/", 1)[0]
                if unit.endswith("/project") and "Add" not in consumers.get(id(layer.output), ()):
                    out = (tf.identity(out[0], name=f"{block}/output"), block)
            elif kind == "ReLU":
                out = (tf.nn.relu6(tensor, name=f"{unit}/Relu6"), unit)
            elif kind == "Add":  # slim: block input + projection
                (shortcut, _), (projected, unit) = sorted(inputs, key=lambda i: i[1].endswith(
                    "/project"))
                block = unit.rsplit("/", 1)[0]
                added = tf.add(shortcut, projected, name=f"{block}/add")
                out = (tf.identity(added, name=f"{block}/output"), block)
            elif kind == "GlobalAveragePooling2D":
                pooled = tf.nn.avg_pool2d(tensor, tensor.shape[1:3], 1, "VALID",
                                          name=f"{TOP}/Logits/AvgPool")
                out = (pooled, f"{TOP}/Logits")
            elif kind == "Dense":
                out = (_logits(tf, weights[layer.name], tensor, f"{TOP}/{scope}"),
                       f"{TOP}/Logits")
            else:
                raise NotImplementedError(f"stand-in slim graph: no op for {kind} {layer.name}")
            built[id(layer.output)] = out
        logits = built[id(model.output)][0]
        tf.nn.softmax(logits, name=f"{TOP}/Predictions/Softmax")
    return graph.as_graph_def()


def save_slim_frozen_graph(model: Any, scope_of: Any, path: Path, seed: int = 0) -> None:
    """Write the slim-named graph after checking it computes the Keras model's logits."""
    import tensorflow as tf

    graph_def = slim_graph_def(model, scope_of)
    size = model.input_shape[1]
    x = np.random.default_rng(seed).uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        tf.compat.v1.import_graph_def(graph_def, name="")
        ours = session.run(f"{TOP}/Logits/output:0", {"input:0": x})
    theirs = model(x, training=False).numpy()
    error = float(np.abs(ours - theirs).max())
    if error > 1e-4 * max(1.0, float(np.abs(theirs).max())):
        raise AssertionError(f"stand-in slim graph differs from its Keras model by {error:.3g}")
    path.write_bytes(graph_def.SerializeToString())


def slim_tflite(frozen_pb: Path, size: int) -> bytes:
    """The frozen graph through TensorFlow's converter, as the releases' `.tflite` were made:
    batch 1, probabilities out, tensors named after the graph's nodes."""
    import tensorflow as tf

    converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
        str(frozen_pb), input_arrays=["input"], output_arrays=[f"{TOP}/Predictions/Softmax"],
        input_shapes={"input": [1, size, size, 3]})
    return converter.convert()


def _conv(tf: Any, layer: Any, weights: list[np.ndarray], x: Any, scope: str) -> Any:
    kernel = weights[0]
    strides = [1, *layer.strides, 1]
    if type(layer).__name__ == "DepthwiseConv2D":
        weights = tf.constant(kernel, name=f"{scope}/depthwise_weights")
        return tf.raw_ops.DepthwiseConv2dNative(input=x, filter=weights, strides=strides,
                                                padding="SAME", name=f"{scope}/depthwise")
    weights = tf.constant(kernel, name=f"{scope}/weights")
    return tf.raw_ops.Conv2D(input=x, filter=weights, strides=strides, padding="SAME",
                             name=f"{scope}/Conv2D")


def _batch_norm(tf: Any, layer: Any, weights: list[np.ndarray], x: Any, scope: str) -> Any:
    gamma, beta, mean, variance = (tf.constant(w, name=f"{scope}/{n}") for w, n in zip(
        weights, ("gamma", "beta", "moving_mean", "moving_variance"), strict=True))
    if abs(layer.epsilon - SLIM_BN_EPSILON) > 1e-9:
        raise ValueError(f"{layer.name}: epsilon {layer.epsilon}, slim uses {SLIM_BN_EPSILON}")
    return tf.raw_ops.FusedBatchNormV3(
        x=x, scale=gamma, offset=beta, mean=mean, variance=variance, epsilon=SLIM_BN_EPSILON,
        is_training=False, name=f"{scope}/FusedBatchNormV3")[0]


def _logits(tf: Any, weights: list[np.ndarray], pooled: Any, scope: str) -> Any:
    """slim's classifier: a 1×1 conv with bias on the pooled map, then squeezed."""
    kernel, bias = weights
    weights = tf.constant(kernel.reshape(1, 1, *kernel.shape), name=f"{scope}/weights")
    conv = tf.raw_ops.Conv2D(input=pooled, filter=weights, strides=[1, 1, 1, 1], padding="SAME",
                             name=f"{scope}/Conv2D")
    with_bias = tf.nn.bias_add(conv, tf.constant(bias, name=f"{scope}/biases"),
                               name=f"{scope}/BiasAdd")
    squeezed = tf.squeeze(with_bias, [1, 2], name=f"{TOP}/Logits/Squeeze")
    return tf.identity(squeezed, name=f"{TOP}/Logits/output")


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _consumers(layers: list[Any]) -> dict[int, set[str]]:
    """id(Keras output tensor) → class names of the layers reading it."""
    out: dict[int, set[str]] = {}
    for layer in layers:
        if type(layer).__name__ == "InputLayer":
            continue
        for tensor in _as_list(layer.input):
            out.setdefault(id(tensor), set()).add(type(layer).__name__)
    return out
