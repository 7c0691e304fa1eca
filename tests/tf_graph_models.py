"""TensorFlow graph fixtures (SavedModels, frozen GraphDefs, TF1 meta graphs), made by
TensorFlow in the tests, seeded, cached under the test fixture cache.

`python tests/tf_graph_models.py [NAME ...]` converts the keras.applications SavedModels and
their frozen GraphDefs and prints the table recorded in docs/tensorflow_compatibility.md.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch  # noqa: F401 - torch before tensorflow in one process, always

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import fixture_cache
from tests.keras_models import APPLICATIONS, App, randomize_statistics

from tf2torch.conversion.convert import convert_source
from tf2torch.sources import open_source
from tf2torch.verification.checks import graph_reference, graph_runner
from tf2torch.verification.report import GRAPH_TOLERANCE, VerificationReport, compare_runs


def cached(name: str, build: Callable[[Path], None]) -> Path:
    """`build(folder)` once per fixture version; the folder (with a DONE mark) after."""
    folder = fixture_cache() / "tf-graphs" / name
    if not (folder / "DONE").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        build(folder)
        (folder / "DONE").write_text("ok")
    return folder


# --- keras.applications as SavedModel and frozen GraphDef ---------------------------------

def application_saved_model(app: App) -> Path:
    """`model.export()` of a seeded keras.applications model (random BN statistics)."""
    def build(folder: Path) -> None:
        import keras

        keras.utils.set_random_seed(0)
        model = getattr(keras.applications, app.name)(
            weights=None, input_shape=(app.size, app.size, 3), classifier_activation=None)
        randomize_statistics(model, mild=app.mild)
        model.export(str(folder / "saved_model"), verbose=False)
        keras.backend.clear_session()

    return cached(f"{app.name}_{app.size}", build) / "saved_model"


def frozen_graph(saved_model: Path) -> Path:
    """The SavedModel's serving signature frozen by TensorFlow (variables as constants)."""
    def build(folder: Path) -> None:
        import tensorflow as tf
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2,
        )

        loaded = tf.saved_model.load(str(saved_model))
        frozen = convert_variables_to_constants_v2(loaded.signatures["serving_default"])
        (folder / "frozen.pb").write_bytes(frozen.graph.as_graph_def().SerializeToString())

    return cached(f"{saved_model.parent.name}-frozen", build) / "frozen.pb"


# --- a tf.Module with two signatures, two inputs and two outputs ---------------------------

def two_input_module() -> Path:
    def build(folder: Path) -> None:
        import tensorflow as tf

        rng = np.random.default_rng(3)

        def var(*shape: int, scale: float = 0.3) -> tf.Variable:
            return tf.Variable(rng.normal(0, scale, shape).astype(np.float32))

        class TwoInputs(tf.Module):
            def __init__(self) -> None:
                super().__init__()
                self.kernel, self.bias = var(3, 3, 3, 6), var(6)
                self.dense, self.offset = var(8, 5), var(5)

            @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 3], tf.float32),
                                          tf.TensorSpec([None, 8], tf.float32)])
            def __call__(self, image, features):
                y = tf.nn.relu(tf.nn.conv2d(image, self.kernel, 2, "SAME") + self.bias)
                y = tf.nn.max_pool2d(y, 3, 2, "SAME")
                flat = tf.reshape(y, [tf.shape(y)[0], -1])  # a dynamic batch
                z = tf.matmul(features, self.dense) + self.offset
                return {"embedding": tf.concat([flat[:, :7], tf.nn.tanh(z)], axis=-1),
                        "score": tf.nn.sigmoid(tf.reduce_sum(z * z, axis=-1, keepdims=True))}

            @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32)])
            def features_only(self, features):
                return {"projected": tf.matmul(features, self.dense)}

        module = TwoInputs()
        tf.saved_model.save(module, str(folder / "saved_model"), signatures={
            "serving_default": module.__call__, "features_only": module.features_only})

    return cached("two_inputs", build) / "saved_model"


# --- a small transformer encoder from Keras layers -----------------------------------------

def transformer_encoder() -> Path:
    def build(folder: Path) -> None:
        import keras

        keras.utils.set_random_seed(5)
        tokens = keras.Input((12, 32), name="tokens")
        attended = keras.layers.MultiHeadAttention(num_heads=4, key_dim=8)(tokens, tokens)
        x = keras.layers.LayerNormalization(epsilon=1e-6)(tokens + attended)
        hidden = keras.layers.Dense(64, activation="gelu")(x)
        hidden = keras.ops.gelu(keras.layers.EinsumDense("btd,de->bte", (12, 64))(hidden),
                                approximate=True)
        x = keras.layers.LayerNormalization()(x + keras.layers.Dense(32)(hidden))
        pooled = keras.layers.GlobalAveragePooling1D()(x)
        logits = keras.layers.Dense(10)(pooled)
        model = keras.Model(tokens, logits)
        randomize_statistics(model, seed=5)
        model.export(str(folder / "saved_model"), verbose=False)
        keras.backend.clear_session()

    return cached("transformer_encoder", build) / "saved_model"


# --- a TF1 graph: meta graph + checkpoint, and frozen -------------------------------------

def tf1_graph() -> Path:
    """A `tf.compat.v1` classifier (conv, fused BN, pooling, dense) saved by a Saver as
    `model.ckpt.meta` + checkpoint, and frozen to `frozen.pb`."""
    def build(folder: Path) -> None:
        import tensorflow as tf

        v1 = tf.compat.v1
        rng = np.random.default_rng(7)
        graph = tf.Graph()
        with graph.as_default():
            x = v1.placeholder(tf.float32, (None, 24, 24, 3), name="images")

            def variable(name: str, value: np.ndarray) -> tf.Variable:
                return v1.get_variable(name, initializer=value.astype(np.float32))

            with v1.variable_scope("conv1"):
                y = tf.nn.conv2d(x, variable("weights", rng.normal(0, 0.3, (3, 3, 3, 8))),
                                 [1, 1, 1, 1], "SAME")
                y, _, _ = v1.nn.fused_batch_norm(
                    y, variable("gamma", rng.uniform(0.5, 1.5, 8)),
                    variable("beta", rng.uniform(-0.2, 0.2, 8)),
                    mean=variable("moving_mean", rng.uniform(-0.5, 0.5, 8)),
                    variance=variable("moving_variance", rng.uniform(0.5, 2, 8)),
                    epsilon=1e-3, is_training=False)
                y = tf.nn.relu6(y)
            y = tf.nn.avg_pool2d(y, 2, 2, "VALID", name="pool1")
            with v1.variable_scope("conv2"):
                y = tf.nn.conv2d(y, variable("weights", rng.normal(0, 0.2, (3, 3, 8, 16))),
                                 [1, 2, 2, 1], "VALID", dilations=[1, 1, 1, 1])
                y = tf.nn.relu(tf.nn.bias_add(y, variable("biases", rng.uniform(-.2, .2, 16))))
            y = tf.nn.max_pool2d(y, 2, 2, "SAME", name="pool2")
            features = int(np.prod(y.shape[1:]))
            flat = tf.reshape(y, [tf.shape(y)[0], features], name="flatten")  # batch left open
            with v1.variable_scope("logits"):
                w = variable("weights", rng.normal(0, 0.1, (features, 10)))
                logits = tf.nn.bias_add(tf.matmul(flat, w), variable("biases",
                                                                       rng.uniform(-1, 1, 10)))
            tf.nn.softmax(logits, name="probabilities")
            with v1.Session(graph=graph) as session:
                session.run(v1.global_variables_initializer())
                v1.train.Saver().save(session, str(folder / "model.ckpt"))
                frozen = v1.graph_util.convert_variables_to_constants(
                    session, graph.as_graph_def(), ["probabilities"])
        (folder / "frozen.pb").write_bytes(frozen.SerializeToString())

    return cached("tf1_classifier", build)


# --- comparison -------------------------------------------------------------------------

def compare_with_tensorflow(path: Path, low: float = -1.0, high: float = 1.0, seed: int = 0,
                            signature: str | None = None, zeros: bool = True,
                            measured: dict | None = None) -> VerificationReport:
    """Convert `path` without TensorFlow and compare every output with TensorFlow's run of
    the same file, on zeros and a seeded random batch in [low, high]. `measured`, if given,
    receives the conversion's time (reading included) and node count."""
    start = time.perf_counter()
    source = open_source(path, signature=signature)
    conversion = convert_source(source)
    if measured is not None:
        measured.update(convert_s=time.perf_counter() - start,
                        nodes=len(conversion.source.graph.nodes))
    shapes = [tuple(shape) for _, shape, _ in conversion.inputs]
    rng = np.random.default_rng(seed)
    cases = {"zeros": [np.zeros((1, *s), np.float32) for s in shapes],
             "random": [rng.uniform(low, high, (2, *s)).astype(np.float32) for s in shapes]}
    if not zeros:
        del cases["zeros"]
    reference = graph_reference(conversion.source)  # a checkpoint may convert via its .meta
    return compare_runs(graph_runner(conversion), reference.run, cases,
                        {"*": GRAPH_TOLERANCE}, reference=reference.description)


def compatibility_table(names: list[str]) -> str:
    rows = ["| Application | Input | Form | Nodes | Max abs diff | Bound | Convert (s) | Result |",
            "|---|---|---|---|---|---|---|---|"]
    for app in APPLICATIONS:
        if names and app.name not in names:
            continue
        saved = application_saved_model(app)
        for form, path in (("SavedModel", saved), ("frozen GraphDef", frozen_graph(saved))):
            start = time.perf_counter()
            conversion = convert_source(open_source(path))
            seconds = time.perf_counter() - start
            nodes = len(conversion.source.graph.nodes)
            del conversion
            report = compare_with_tensorflow(path, 0.0, 255.0)
            worst = max(report.comparisons, key=lambda c: c.max_abs)
            rows.append(f"| {app.name} | {app.size}×{app.size} | {form} | {nodes} | "
                        f"{worst.max_abs:.2e} | {worst.bound:.2e} | {seconds:.2f} | "
                        f"{'pass' if report.passed else 'FAIL'} |")
            print(rows[-1], flush=True)
    return "\n".join(rows)


if __name__ == "__main__":
    print(compatibility_table(sys.argv[1:]))
