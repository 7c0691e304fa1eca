"""Keras and TFLite files through the whole CLI: convert → package → load, against the originals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import tf2torch
from keras_models import randomize_statistics
from tf2torch.cli import main

tf = pytest.importorskip("tensorflow")
skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def keras_classifier(tmp_path_factory) -> tuple[Path, object]:
    """A small seeded classifier that carries its own Rescaling, with Flatten after convs."""
    tf.keras.utils.set_random_seed(7)
    inp = tf.keras.Input((48, 48, 3))
    x = tf.keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = tf.keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.DepthwiseConv2D(3, strides=2, padding="same", activation="swish")(x)
    x = tf.keras.layers.Flatten()(x)
    out = tf.keras.layers.Dense(3)(x)
    model = tf.keras.Model(inp, out, name="tiny_classifier")
    path = tmp_path_factory.mktemp("keras") / "tiny.keras"
    model.save(path)
    return path, model


def test_keras_file_to_package_and_back(keras_classifier, tmp_path, capsys) -> None:
    path, model = keras_classifier
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nteapot\n")
    code = main(["convert", str(path), "-o", str(tmp_path / "pkg"), "--labels", str(labels),
                 "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["verification"]["passed"]
    assert report["verification"]["reference"] == "Keras on tiny.keras"

    loaded = tf2torch.load(tmp_path / "pkg")
    images = np.random.default_rng(0).uniform(0, 255, (4, 48, 48, 3)).astype(np.float32)
    with torch.inference_mode():
        ours = loaded.net(torch.from_numpy(images)).numpy()
    theirs = model(images, training=False).numpy()
    assert np.abs(ours - theirs).max() <= 1e-4 * max(1.0, np.abs(theirs).max())

    # the model's own Rescaling implies a raw-pixel encoder; the decoder has the user's labels
    assert loaded.encoder.value_range == 255.0 and loaded.encoder.layout == "NHWC"
    preds = loaded.classify(skimage_data.chelsea(), top=2)[0]
    assert preds[0].label in {"cat", "dog", "teapot"}


def test_legacy_h5_converts_too(keras_classifier, tmp_path, capsys) -> None:
    _, model = keras_classifier
    h5 = tmp_path / "legacy.h5"
    model.save(h5)
    assert main(["convert", str(h5), "-o", str(tmp_path / "pkg"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verification"]["passed"]


def test_tflite_file_to_package_and_back(keras_classifier, tmp_path, capsys) -> None:
    _, model = keras_classifier
    path = tmp_path / "tiny.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    capsys.readouterr()  # the TFLite converter's own chatter
    code = main(["convert", str(path), "-o", str(tmp_path / "pkg"), "--layout", "nchw", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["verification"]["passed"]
    assert report["card"]["input"]["layout"] == "nchw"

    loaded = tf2torch.load(tmp_path / "pkg")
    image = np.random.default_rng(1).uniform(0, 255, (1, 48, 48, 3)).astype(np.float32)
    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
    interpreter.invoke()
    theirs = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    with torch.inference_mode():
        ours = loaded.net(torch.from_numpy(image.transpose(0, 3, 1, 2).copy())).numpy()
    assert np.abs(ours - theirs).max() <= 1e-4 * max(1.0, np.abs(theirs).max())


def test_lambda_layer_is_refused_by_name(tmp_path, capsys) -> None:
    inp = tf.keras.Input((4,))
    out = tf.keras.layers.Lambda(lambda t: t + 1, name="plus_one")(inp)
    path = tmp_path / "lambda.keras"
    tf.keras.Model(inp, out).save(path)
    code = main(["convert", str(path), "-o", str(tmp_path / "pkg")])
    err = capsys.readouterr().err
    assert code != 0 and "Lambda" in err and "plus_one" in err
    assert not (tmp_path / "pkg").exists()


def test_emit_code_from_the_command_line(keras_classifier, tmp_path, capsys) -> None:
    """`convert --emit-code`: the written file runs without tf2torch (blocked in a fresh
    interpreter) and matches Keras."""
    import subprocess
    import sys

    path, model = keras_classifier
    code_file = tmp_path / "tiny.py"
    assert main(["convert", str(path), "-o", str(tmp_path / "pkg"), "--emit-code",
                 str(code_file)]) == 0
    assert "code: " in capsys.readouterr().err
    weights = code_file.with_suffix(".safetensors")
    images = np.random.default_rng(3).uniform(0, 255, (2, 48, 48, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", images)
    script = (
        "import sys, runpy, numpy as np, torch\n"
        "sys.modules['tf2torch'] = None  # the emitted file must not need tf2torch\n"
        f"ns = runpy.run_path({str(code_file)!r})\n"
        f"net = ns['load']({str(weights)!r})\n"
        "with torch.no_grad():\n"
        f"    out = net(torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r})))\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, out.numpy())\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    ours = np.load(tmp_path / "y.npy")
    theirs = model(images, training=False).numpy()
    assert np.abs(ours - theirs).max() <= 1e-4 * max(1.0, np.abs(theirs).max())


def test_convert_verifies_the_users_images_on_the_graph_path(keras_classifier, tmp_path,
                                                              capsys) -> None:
    from PIL import Image

    path, _ = keras_classifier
    photo = tmp_path / "chelsea.png"
    Image.fromarray(skimage_data.chelsea()).save(photo)
    assert main(["convert", str(path), "-o", str(tmp_path / "pkg"), "--images", str(photo),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["verification"]
    image_rows = [c for c in report["comparisons"] if c["case"] == "image:chelsea.png"]
    assert len(image_rows) == 1 and image_rows[0]["max_abs"] <= image_rows[0]["bound"]


def test_inference_form_folds_a_graph_nets_batchnorms_and_matches_keras(tmp_path) -> None:
    """Conv → BatchNorm pairs of a converted Keras net fold into the conv (plain, depthwise,
    without scale or centre); a BN after a conv with its own activation, after a conv whose
    output is also used elsewhere, or over another axis is kept. Checked against Keras."""
    from tf2torch.conversion.graph.modules.normalization import BatchNorm
    from tf2torch.packages.inference import inference_form

    layers = tf.keras.layers
    tf.keras.utils.set_random_seed(11)
    inp = tf.keras.Input((20, 20, 3))
    a = layers.BatchNormalization(name="fold_plain")(layers.Conv2D(8, 3, 2, "same")(inp))
    b = layers.BatchNormalization(center=False, name="fold_dw")(
        layers.DepthwiseConv2D(3, padding="same", use_bias=False)(a))
    c = layers.BatchNormalization(scale=False, name="keep_act")(
        layers.Conv2D(8, 1, activation="relu")(b))
    conv = layers.Conv2D(8, 1)(c)
    d = layers.Add()([layers.BatchNormalization(name="keep_shared")(conv), conv])
    e = layers.BatchNormalization(axis=2, name="keep_axis")(d)
    model = tf.keras.Model(inp, layers.Dense(5)(layers.GlobalAveragePooling2D()(e)))
    randomize_statistics(model, seed=3)  # statistics far from the identity: a wrong fold shows
    rng = np.random.default_rng(3)
    path = tmp_path / "bn.keras"
    model.save(path)
    tf2torch.convert(path, tmp_path / "pkg", verify=False)
    net = tf2torch.load(tmp_path / "pkg").net
    form = inference_form(net, (20, 20, 3), governed=False, input_layout="nhwc")
    kept = sorted(n for n, m in form.named_modules() if isinstance(m, BatchNorm))
    assert kept == ["net.keep_act", "net.keep_axis", "net.keep_shared"], kept
    images = rng.uniform(-1, 1, (3, 20, 20, 3)).astype(np.float32)
    with torch.inference_mode():
        ours = form(torch.from_numpy(images)).numpy()
    theirs = model(images, training=False).numpy()
    assert np.abs(ours - theirs).max() <= 1e-4 * max(1.0, np.abs(theirs).max())
