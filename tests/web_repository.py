"""A small repository for the web tests, made with TensorFlow (seeded), built once per session.

    mobilenet_v2_0.35_96   the TF-slim stand-in release, converted, per-layer report recorded
    tiny_classifier        a Keras classifier with its own Rescaling and three named classes
    tiny_detector          a two-output TFLite model, with a raw-pixel encoder (image try-it)
    tiny_detector_tensor   the same file without an encoder (try-it takes a .npy input)

Import the fixture (`from web_repository import web_repo  # noqa: F401`) where it is used.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ZOO, KERAS, TFLITE, TENSOR = ("mobilenet_v2_0.35_96", "tiny_classifier", "tiny_detector",
                              "tiny_detector_tensor")
LABELS = ("cat", "dog", "teapot")


@dataclass
class WebRepo:
    home: Path
    release: object               # the stand-in release (StandIn)
    keras_model: object           # the Keras classifier, to compare with
    tflite: Path                  # the detector's .tflite, to compare with
    photo: Path                   # the demo's photo: scikit-image's astronaut as JPEG

    @property
    def models(self) -> Path:
        return self.home / "models"

    def snapshot(self) -> dict[str, str]:
        """Every file under the home with its sha256: the web app must change none."""
        return {str(p.relative_to(self.home)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(self.home.rglob("*")) if p.is_file()}


def _keras_classifier(tf, folder: Path) -> tuple[Path, object]:
    tf.keras.utils.set_random_seed(7)
    inp = tf.keras.Input((48, 48, 3))
    x = tf.keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = tf.keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.DepthwiseConv2D(3, strides=2, padding="same", activation="swish")(x)
    x = tf.keras.layers.Flatten()(x)
    out = tf.keras.layers.Dense(len(LABELS), bias_initializer="random_normal")(x)
    model = tf.keras.Model(inp, out, name="tiny_classifier")
    bn = model.layers[3]  # non-trivial BatchNorm statistics, as the house rules ask
    rng = np.random.default_rng(3)
    gamma, beta, mean, var = bn.get_weights()
    bn.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape),
                    rng.normal(0, 0.3, mean.shape), rng.uniform(0.5, 2.0, var.shape)])
    path = folder / "tiny_classifier.keras"
    model.save(path)
    return path, model


def _tflite_detector(tf, folder: Path) -> Path:
    tf.keras.utils.set_random_seed(11)
    inp = tf.keras.Input((32, 32, 3))
    x = tf.keras.layers.Rescaling(1 / 255.0)(inp)
    x = tf.keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu",
                               bias_initializer="random_normal")(x)
    heatmap = tf.keras.layers.Conv2D(2, 1, name="heatmap", bias_initializer="random_normal")(x)
    pooled = tf.keras.layers.GlobalAveragePooling2D()(x)
    scores = tf.keras.layers.Dense(5, name="scores", bias_initializer="random_normal")(pooled)
    model = tf.keras.Model(inp, [heatmap, scores], name="tiny_detector")
    path = folder / "tiny_detector.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


@pytest.fixture(scope="session")
def web_repo(standin, tmp_path_factory) -> WebRepo:
    tf = pytest.importorskip("tensorflow")
    skimage_data = pytest.importorskip("skimage.data")
    import tf2torch
    from tf2torch.api import verify_layers

    work = tmp_path_factory.mktemp("web-sources")
    home = tmp_path_factory.mktemp("web-home")
    models = home / "models"
    photo = work / "astronaut.jpg"
    Image.fromarray(skimage_data.astronaut()).save(photo, quality=95)  # as `make demo` does

    release = standin(0.35, 96)
    tf2torch.convert(release.archive, models / ZOO, images=[photo])
    verify_layers(release.archive, package=models / ZOO)

    keras_path, keras_model = _keras_classifier(tf, work)
    labels = work / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    tf2torch.convert(keras_path, models / KERAS, name=KERAS, labels=str(labels))

    tflite = _tflite_detector(tf, work)
    tf2torch.convert(tflite, models / TFLITE, name=TFLITE, preprocess="raw")
    tf2torch.convert(tflite, models / TENSOR, name=TENSOR, preprocess="none")
    return WebRepo(home, release, keras_model, tflite, photo)
