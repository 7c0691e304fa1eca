"""Stand-in TF-slim MobileNetV2 releases made with TensorFlow's own MobileNetV2.

No pretrained checkpoint can be downloaded here, so the demo and the tests build
`tf.keras.applications.MobileNetV2` with seeded random weights (and non-trivial BatchNorm
statistics), save them as a TF1 checkpoint under the exact slim names and shapes, put a
`.tflite` of the same model and a `tests.h5` of its outputs beside it, and pack the lot like the
published `mobilenet_v2_<multiplier>_<size>.tgz`. The Keras model is the reference: its numbers
come from TensorFlow, never from tf2torch. The frozen graph and the `.tflite` are rebuilt from
it under slim's node names (`standin_graph`), as the releases' are.

Needs TensorFlow (the `[tf]` extra).
"""

from __future__ import annotations

import os
import re
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tf2torch.references.standin_graph import save_slim_frozen_graph, slim_tflite

# Keras layer name → slim scope (inside "MobilenetV2/"); Keras variable → slim variable.
_KERAS_TO_SLIM_SCOPE: tuple[tuple[str, str], ...] = (
    (r"Conv1", "Conv"),
    (r"bn_Conv1", "Conv/BatchNorm"),
    (r"expanded_conv_(depthwise|project)", r"expanded_conv/\1"),
    (r"expanded_conv_(depthwise|project)_BN", r"expanded_conv/\1/BatchNorm"),
    (r"block_(\d+)_(expand|depthwise|project)", r"expanded_conv_\1/\2"),
    (r"block_(\d+)_(expand|depthwise|project)_BN", r"expanded_conv_\1/\2/BatchNorm"),
    (r"Conv_1", "Conv_1"),
    (r"Conv_1_bn", "Conv_1/BatchNorm"),
    (r"predictions", "Logits/Conv2d_1c_1x1"),
)
_KERAS_TO_SLIM_VARIABLE = {
    "kernel": "weights", "depthwise_kernel": "depthwise_weights", "bias": "biases",
    "gamma": "gamma", "beta": "beta", "moving_mean": "moving_mean",
    "moving_variance": "moving_variance",
}


@dataclass(frozen=True)
class StandIn:
    """What `make_standin_release` wrote."""

    prefix: Path          # checkpoint prefix
    archive: Path | None  # the .tgz, when packed
    tflite: Path | None
    tests_h5: Path


def release_name(multiplier: float, size: int) -> str:
    return f"mobilenet_v2_{multiplier:g}_{size}"


def keras_mobilenet_v2(multiplier: float, size: int, seed: int = 0, classes: int = 1001) -> Any:
    """Keras MobileNetV2 with seeded random weights and non-trivial BN statistics.

    The statistics are calibrated on random images first (one training-mode pass with the
    BatchNorm momentum at 0 sets each layer's moving mean and variance to what its input
    really is), then perturbed: with arbitrary statistics the activations of a random deep net
    collapse, its logits no longer depend on the image, and a port that got the backbone wrong
    would still match.
    """
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    model = tf.keras.applications.MobileNetV2(
        input_shape=(size, size, 3), alpha=multiplier, weights=None, classes=classes,
        classifier_activation=None,
    )
    rng = np.random.default_rng(seed)
    norms = [layer for layer in model.layers
             if isinstance(layer, tf.keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    model(rng.uniform(-1, 1, (16, size, size, 3)).astype(np.float32), training=True)
    for layer in norms:
        layer.momentum = 0.999
        gamma, beta, mean, var = layer.get_weights()
        layer.set_weights([
            rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
            rng.normal(0.0, 0.2, beta.shape).astype(np.float32),
            (mean + rng.normal(0.0, 0.1, mean.shape) * np.sqrt(var)).astype(np.float32),
            (var * rng.uniform(0.8, 1.25, var.shape) + 1e-3).astype(np.float32),
        ])
    head = model.get_layer("predictions")
    kernel, bias = head.get_weights()
    head.set_weights([kernel, rng.normal(0.0, 0.1, bias.shape).astype(np.float32)])
    return model


def slim_variables(model: Any) -> dict[str, np.ndarray]:
    """The Keras model's weights under TF-slim's names and shapes."""
    out: dict[str, np.ndarray] = {}
    for layer in model.layers:
        scope = _slim_scope(layer.name)
        if scope is None:
            continue
        for var in layer.weights:
            short = var.path.split("/")[-1] if hasattr(var, "path") else var.name.split("/")[-1]
            short = short.split(":")[0]
            value = np.asarray(var.numpy())
            if scope.endswith("depthwise") and short == "kernel":
                short = "depthwise_kernel"  # Keras 3 calls it plain "kernel"
            if scope.startswith("Logits") and short == "kernel":
                value = value.reshape(1, 1, *value.shape)  # Dense → slim's 1×1 conv
            out[f"MobilenetV2/{scope}/{_KERAS_TO_SLIM_VARIABLE[short]}"] = value
    return out


def _slim_scope(keras_name: str) -> str | None:
    for pattern, replacement in _KERAS_TO_SLIM_SCOPE:
        if re.fullmatch(pattern, keras_name):
            return re.sub(pattern, replacement, keras_name)
    return None


def save_checkpoint(variables: dict[str, np.ndarray], prefix: Path, shards: int = 1) -> None:
    """Write a TF V2 checkpoint with TensorFlow's own SaveV2 (and MergeV2Checkpoints)."""
    import tensorflow as tf

    names = sorted(variables)
    if shards == 1:
        tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=names, shape_and_slices=[""] * len(names),
                          tensors=[tf.constant(variables[n]) for n in names])
        return
    parts = []
    for i in range(shards):
        part_names = names[i::shards]
        part_prefix = f"{prefix}_temp/part-{i:05d}"
        tf.raw_ops.SaveV2(prefix=part_prefix, tensor_names=part_names,
                          shape_and_slices=[""] * len(part_names),
                          tensors=[tf.constant(variables[n]) for n in part_names])
        parts.append(part_prefix)
    tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=tf.stack(parts), destination_prefix=str(prefix),
                                  delete_old_dirs=True)


@contextmanager
def quiet() -> Iterator[None]:
    """Silence stdout/stderr at the file-descriptor level (TF's C++ logs included)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(os.devnull, "w") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def make_standin_release(
    out_dir: Path, multiplier: float = 1.4, size: int = 224, seed: int = 0, *,
    ema: bool = False, global_step: bool = False, shards: int = 1, tflite: bool = True,
    pack: bool = True,
) -> StandIn:
    """Write `<out_dir>/<release>/` (checkpoint, .tflite, tests.h5) and `<release>.tgz`.

    With `ema`, the checkpoint holds `…/ExponentialMovingAverage` shadows carrying the
    reference weights, while the raw variables are perturbed: only a reader that prefers the
    shadows reproduces the reference outputs.
    """
    import h5py
    import tensorflow as tf

    name = release_name(multiplier, size)
    folder = Path(out_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    model = keras_mobilenet_v2(multiplier, size, seed)
    variables = slim_variables(model)
    if ema:
        rng = np.random.default_rng(seed + 1)
        shadows = {f"{k}/ExponentialMovingAverage": v for k, v in variables.items()
                   if not k.endswith(("moving_mean", "moving_variance"))}
        for key in shadows:
            raw = key.removesuffix("/ExponentialMovingAverage")
            variables[raw] = variables[raw] + rng.normal(0, 0.05, variables[raw].shape).astype(
                np.float32)
        variables.update(shadows)
    if global_step:
        variables["global_step"] = np.array(123456, dtype=np.int64)
    prefix = folder / f"{name}.ckpt"
    save_checkpoint(variables, prefix, shards)

    rng = np.random.default_rng(seed)
    random_input = rng.uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
    zeros = np.zeros((1, size, size, 3), np.float32)
    logits_zeros = model(zeros, training=False).numpy()
    logits_random = model(random_input, training=False).numpy()
    tests_h5 = folder / "tests.h5"
    with h5py.File(tests_h5, "w") as f:
        f["RandomInput"] = random_input
        f["LogitsForZeros"] = logits_zeros
        f["LogitsForRandom"] = logits_random
        f["OutputForZeros"] = tf.nn.softmax(logits_zeros).numpy()
        f["OutputForRandom"] = tf.nn.softmax(logits_random).numpy()

    model.save(folder / f"{name}.keras")  # a Keras form, for per-layer comparison
    # like the releases' frozen graph and .tflite: slim node names, probabilities out
    frozen_pb = folder / f"{name}_frozen.pb"
    save_slim_frozen_graph(model, _slim_scope, frozen_pb, seed)
    tflite_path = None
    if tflite:
        tflite_path = folder / f"{name}.tflite"
        with quiet():  # the converter logs every op to stderr
            tflite_path.write_bytes(slim_tflite(frozen_pb, size))
    (folder / f"{name}_info.txt").write_text(
        f"Stand-in for the TF-slim release {name}: tf.keras.applications.MobileNetV2 "
        f"(alpha={multiplier:g}, {size}x{size}, 1001 classes) with random weights, seed {seed}.\n"
    )
    archive = None
    if pack:
        archive = Path(out_dir) / f"{name}.tgz"
        with tarfile.open(archive, "w:gz") as tar:
            for path in sorted(folder.iterdir()):
                tar.add(path, arcname=f"./{path.name}")
    return StandIn(prefix=prefix, archive=archive, tflite=tflite_path, tests_h5=tests_h5)
