"""Keras fixture models for the graph-converter tests, and the comparison helper they share.

Models are built with Keras (TensorFlow imported lazily, after torch), seeded, saved to a
folder the caller gives; every comparison is against Keras's own outputs.

`python tests/keras_models.py [NAME ...]` converts keras.applications models and prints the
compatibility table recorded in docs/keras_compatibility.md.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tf2torch.conversion.graph import convert_graph
from tf2torch.references.keras import keras_runner
from tf2torch.sources.keras.reader import read_keras
from tf2torch.verification.report import GRAPH_TOLERANCE, VerificationReport, compare_runs

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@dataclass(frozen=True)
class App:
    """A keras.applications architecture and the input size it is tested at."""

    name: str
    size: int = 96
    slow: bool = True
    # Contractive BN statistics for very deep nets: with the default ones their float32
    # outputs at zero input are ill-conditioned (PyTorch float32 vs float64 differs more
    # than the tolerance; Keras float32 too), which would test float rounding, not conversion.
    mild: bool = False


APPLICATIONS = [
    App("MobileNetV2", 96, slow=False),
    App("MobileNetV3Small", 96, slow=False),
    App("EfficientNetB0", 96, slow=False),
    App("ResNet50", 64, slow=False),
    App("DenseNet121", 64, slow=False),
    App("ConvNeXtTiny", 64, slow=False),
    App("Xception", 96),
    App("VGG16", 64),
    App("VGG19", 64),
    App("ResNet101", 64),
    App("ResNet152", 64),
    App("ResNet50V2", 64),
    App("ResNet101V2", 64),
    App("ResNet152V2", 64),
    App("InceptionV3", 96),
    App("InceptionResNetV2", 96),
    App("MobileNet", 96),
    App("MobileNetV3Large", 96),
    App("DenseNet169", 64),
    App("DenseNet201", 64),
    App("NASNetMobile", 96),
    App("NASNetLarge", 96),
    App("EfficientNetB1", 96),
    App("EfficientNetB2", 96),
    App("EfficientNetB3", 96),
    App("EfficientNetB4", 96),
    App("EfficientNetB5", 96),
    App("EfficientNetB6", 96),
    App("EfficientNetB7", 96),
    App("EfficientNetV2B0", 96),
    App("EfficientNetV2B1", 96),
    App("EfficientNetV2B2", 96),
    App("EfficientNetV2B3", 96, mild=True),
    App("EfficientNetV2S", 96, mild=True),
    App("EfficientNetV2M", 96, mild=True),
    App("EfficientNetV2L", 96, mild=True),
    App("ConvNeXtSmall", 64),
    App("ConvNeXtBase", 64),
    App("ConvNeXtLarge", 64),
    App("ConvNeXtXLarge", 64),
]


def randomize_statistics(model, seed: int = 0, mild: bool = False) -> None:
    """Give every constant-initialised variable (BN statistics, gammas, betas, biases,
    PReLU slopes, LayerScale) seeded non-trivial values, so their conversion is actually
    tested."""
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        for var in layer.weights:
            role = var.path.rsplit("/", 1)[-1] if hasattr(var, "path") else var.name
            role = role.split(":")[0]
            shape = tuple(var.shape)
            value = _random_value(role, shape, rng, type(layer).__name__, mild)
            if value is not None:
                var.assign(value.astype(np.float32))


def _random_value(role: str, shape: tuple, rng: np.random.Generator, cls: str, mild: bool):
    if role == "moving_mean":
        return rng.uniform(-0.5, 0.5, shape)
    if role == "moving_variance":
        return rng.uniform(1.0, 2.0, shape) if mild else rng.uniform(0.5, 2.0, shape)
    if cls == "LayerScale":  # initialised at 1e-6, which would hide the block it scales
        return rng.uniform(0.1, 0.3, shape)
    if role == "gamma":
        return rng.uniform(0.5, 1.0, shape) if mild else rng.uniform(0.5, 1.5, shape)
    if role in ("beta", "bias"):
        return rng.uniform(-0.2, 0.2, shape)
    if role == "alpha":  # PReLU's slopes start at 0, which would make it a ReLU
        return rng.uniform(0.1, 0.6, shape)
    return None


def _all_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)
        yield layer


def build_application(app: App, folder: Path, suffix: str = ".keras") -> Path:
    """Save a seeded keras.applications model (weights=None, logits) and return its path."""
    import keras

    path = Path(folder) / f"{app.name}_{app.size}{suffix}"
    if path.exists():
        return path
    keras.utils.set_random_seed(0)
    builder = getattr(keras.applications, app.name)
    model = builder(weights=None, input_shape=(app.size, app.size, 3),
                    classifier_activation=None)
    randomize_statistics(model, mild=app.mild)
    model.save(path)
    keras.backend.clear_session()
    return path


def image_inputs(shapes: list[tuple], seed: int = 0, low: float = 0.0,
                 high: float = 255.0) -> dict[str, list[np.ndarray]]:
    """The zeros case and a seeded random batch, one array per model input."""
    rng = np.random.default_rng(seed)
    return {
        "zeros": [np.zeros((1, *s), np.float32) for s in shapes],
        "random": [rng.uniform(low, high, (2, *s)).astype(np.float32) for s in shapes],
    }


def assert_image_by_image_like_keras(graph, model, images: np.ndarray, rel: float,
                                     change_rel: float, together: bool = False) -> None:
    """`graph` run on each image alone (or on all of them as one batch: `together`) gives
    `model`'s outputs (within `rel` of their largest), and what the image changes is
    compared on its own (within `change_rel`): the biases and BatchNorm shifts are most of
    each value, so a rewrite applied wrongly could hide under them."""
    theirs = np.asarray(model(images, training=False))
    with torch.no_grad():
        ours = (graph(torch.from_numpy(images)).numpy() if together else np.concatenate(
            [graph(torch.from_numpy(image[None])).numpy() for image in images]))
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() <= rel * max(1.0, np.abs(theirs).max())
    seen, expected = ours[1:] - ours[0], theirs[1:] - theirs[0]
    assert np.abs(expected).max() > 0.01
    assert np.abs(seen - expected).max() <= change_rel * np.abs(expected).max()


def compare_with_keras(path: Path, low: float = -1.0, high: float = 1.0, layout: str = "nhwc",
                       seed: int = 0) -> VerificationReport:
    """Convert `path` and compare every output with Keras on zeros and a random batch."""
    source = read_keras(path)
    conversion = convert_graph(source, layout=layout)
    shapes = [tuple(shape) for _, shape, _ in conversion.inputs]
    cases = image_inputs(shapes, seed, low, high)

    def run_net(batch: list[np.ndarray]) -> dict[str, np.ndarray]:
        args = [torch.from_numpy(_to_layout(x, layout)) for x in batch]
        with torch.no_grad():
            out = conversion.net(*args)
        out = out if isinstance(out, tuple) else (out,)
        return {name: _from_layout(o.numpy(), layout)
                for name, o in zip(conversion.outputs, out, strict=True)}

    return compare_runs(run_net, keras_runner(source), cases, {"*": GRAPH_TOLERANCE},
                        reference="keras")


def _to_layout(x: np.ndarray, layout: str) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if layout == "nchw" and x.ndim == 4 else x


def _from_layout(x: np.ndarray, layout: str) -> np.ndarray:
    return x.transpose(0, 2, 3, 1) if layout == "nchw" and x.ndim == 4 else x


def compatibility_table(names: list[str], folder: Path) -> str:
    """Convert each application and return markdown rows with the worst difference."""
    rows = ["| Application | Input | Parameters | Max abs diff | Bound | Convert (s) | Result |",
            "|---|---|---|---|---|---|---|"]
    for app in APPLICATIONS:
        if names and app.name not in names:
            continue
        path = build_application(app, folder)
        start = time.perf_counter()
        conversion = convert_graph(read_keras(path))
        seconds = time.perf_counter() - start
        params = conversion.report.parameters
        del conversion
        report = compare_with_keras(path, 0.0, 255.0)
        worst = max(report.comparisons, key=lambda c: c.max_abs)
        rows.append(f"| {app.name} | {app.size}×{app.size} | {params / 1e6:.1f} M | "
                    f"{worst.max_abs:.2e} | {worst.bound:.2e} | {seconds:.2f} | "
                    f"{'pass' if report.passed else 'FAIL'} |")
        print(rows[-1], flush=True)
        path.unlink()
    return "\n".join(rows)


def save_small_keras(folder: Path, seed: int) -> dict[str, Path]:
    """The crafted-file and fuzzing seed: conv (stride 2, SAME), BN, flatten, dense, saved
    by Keras as `.keras` and `.h5`."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    inp = tf.keras.Input((8, 8, 3))
    x = tf.keras.layers.Conv2D(4, 3, strides=2, padding="same", name="conv")(inp)
    x = tf.keras.layers.BatchNormalization(name="bn")(x)
    out = tf.keras.layers.Dense(3, name="dense")(tf.keras.layers.Flatten(name="flat")(x))
    model = tf.keras.Model(inp, out)
    model.save(folder / "seed.keras")
    model.save(folder / "seed.h5")
    return {"keras": folder / "seed.keras", "h5": folder / "seed.h5"}


if __name__ == "__main__":
    out = Path(os.environ.get("KERAS_FIXTURES", "/tmp/tf2torch-keras-apps"))
    out.mkdir(parents=True, exist_ok=True)
    print(compatibility_table(sys.argv[1:], out))
