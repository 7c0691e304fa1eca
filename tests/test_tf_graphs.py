"""TensorFlow graphs converted without TensorFlow and compared with TensorFlow: Keras
application SavedModels and their frozen GraphDefs, a tf.Module with two signatures, a
transformer encoder, a TF1 meta graph + checkpoint, the demo release's frozen graph; and
every kind of bad input, refused in one line with nothing written."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tests.keras_models import APPLICATIONS
from tests.tf_graph_models import (
    application_saved_model,
    cached,
    compare_with_tensorflow,
    frozen_graph,
    tf1_graph,
    transformer_encoder,
    two_input_module,
)

from tf2torch.cli import main
from tf2torch.errors import SourceError, UnsupportedError
from tf2torch.sources import open_source

tf = pytest.importorskip("tensorflow")


# --- the corpus -----------------------------------------------------------------------------

def _app_params():
    for app in APPLICATIONS:
        slow = [] if app.name == "MobileNetV2" else [pytest.mark.slow]
        for form in ("saved_model", "frozen"):
            yield pytest.param(app, form, id=f"{app.name}-{form}", marks=slow)


@pytest.mark.parametrize(("app", "form"), list(_app_params()))
def test_application_matches_tensorflow(app, form, record_figures):
    saved = application_saved_model(app)
    path = saved if form == "saved_model" else frozen_graph(saved)
    measured: dict = {}
    report = compare_with_tensorflow(path, 0.0, 255.0, measured=measured)
    worst = max(report.comparisons, key=lambda c: c.max_abs)
    record_figures("tf-graphs", model=app.name, size=app.size, form=form,
                   max_abs=worst.max_abs, bound=worst.bound, passed=report.passed, **measured)
    assert report.passed, report.table()


def _record(record_figures, model: str, form: str, report, measured: dict) -> None:
    worst = max(report.comparisons, key=lambda c: c.max_abs)
    record_figures("tf-graphs", model=model, size=None, form=form, max_abs=worst.max_abs,
                   bound=worst.bound, passed=report.passed, **measured)


def test_module_with_two_inputs_outputs_and_signatures(record_figures):
    path = two_input_module()
    source = open_source(path)
    assert source.meta["signature"] == "serving_default"
    assert [i.name for i in source.graph.inputs] == ["features", "image"]  # by key, as TF
    assert source.graph.output_names == ["embedding", "score"]
    measured: dict = {}
    report = compare_with_tensorflow(path, measured=measured)
    _record(record_figures, "tf.Module, two inputs/outputs", "saved_model", report, measured)
    assert report.passed, report.table()
    other = compare_with_tensorflow(path, signature="features_only")
    assert other.passed and {c.output for c in other.comparisons} == {"projected"}


def test_missing_signature_lists_those_that_exist():
    with pytest.raises(SourceError, match="no signature 'predict'; it has features_only, "
                       "serving_default"):
        open_source(two_input_module(), signature="predict")


def test_transformer_encoder_matches_tensorflow(record_figures):
    path = transformer_encoder()
    ops = open_source(path).graph.op_counts()
    assert {"Einsum", "Tanh", "Softmax", "Rsqrt"} <= set(ops) and {"Erf", "Erfc"} & set(ops)
    measured: dict = {}
    report = compare_with_tensorflow(path, -2.0, 2.0, measured=measured)
    _record(record_figures, "transformer encoder (Keras layers)", "saved_model", report,
            measured)
    assert report.passed, report.table()


@pytest.mark.parametrize("name", ["model.ckpt.meta", "model.ckpt", "frozen.pb"])
def test_tf1_graph_matches_tensorflow(name, record_figures):
    """The meta graph, the checkpoint prefix beside it (no zoo architecture fits: graph
    path) and the frozen GraphDef."""
    measured: dict = {}
    report = compare_with_tensorflow(tf1_graph() / name, measured=measured)
    _record(record_figures, "TF1 classifier (tf.compat.v1)", name, report, measured)
    assert report.passed, report.table()


def test_tf1_meta_graph_reads_variables_through_the_saver():
    source = open_source(tf1_graph() / "model.ckpt.meta")
    assert source.format == "tf-meta-graph"
    assert source.meta["variables"] == 9
    assert "conv1/moving_variance" in source.tensors
    assert source.graph.op_counts()["FusedBatchNormV3"] == 1


@pytest.mark.parametrize(("multiplier", "size"), [
    (0.35, 96), pytest.param(1.4, 224, marks=pytest.mark.slow, id="demo-release-1.4_224")])
def test_demo_frozen_graph_goes_the_graph_path(standin, tmp_path, capsys, record_figures,
                                               multiplier, size):
    """`tf2torch convert mobilenet_v2_1.4_224_frozen.pb` (the demo release's own frozen
    graph; a small release of the same build in CI): graph path, matches TensorFlow."""
    name = f"mobilenet_v2_{multiplier:g}_{size}"
    frozen = standin(multiplier, size).prefix.parent / f"{name}_frozen.pb"
    out = tmp_path / "pkg"
    code, stdout, err = _cli(capsys, "convert", str(frozen), "-o", str(out), "--json",
                             "--emit-code", str(tmp_path / "model.py"))
    assert code == 0, err
    data = json.loads(stdout)
    worst = max(data["verification"]["comparisons"], key=lambda c: c["max_abs"])
    record_figures("tf-graphs", model=f"{name}_frozen.pb (stand-in release)", size=size,
                   form="frozen", max_abs=worst["max_abs"], bound=worst["bound"],
                   passed=data["verification"]["passed"], convert_s=None,  # CLI: + verify
                   nodes=len(json.loads((out / "card.json").read_text())["config"]["graph"]["nodes"]))
    assert data["card"]["architecture"] == "tensorflow-graph"
    assert data["verification"]["passed"]
    assert {c["output"] for c in data["verification"]["comparisons"]} == {
        "MobilenetV2/Predictions/Softmax"}
    code = (tmp_path / "model.py").read_text()
    assert "# MobilenetV2/Conv/Conv2D (Conv2D)" in code
    assert "import tensorflow" not in code


def test_per_node_comparison_names_tf_nodes():
    from tf2torch.api import verify_layers

    report = verify_layers(tf1_graph() / "frozen.pb")
    assert report.passed
    names = [row.ref for row in report.rows]
    assert "conv1/FusedBatchNormV3:0" in names and "logits/BiasAdd:0" in names
    saved = verify_layers(two_input_module())
    assert saved.passed and len(saved.rows) >= 8


def test_inspect_shows_signatures_ops_and_variables(capsys):
    code, out, err = _cli(capsys, "inspect", str(two_input_module()))
    assert code == 0, err
    assert "* signature serving_default" in out and "  signature features_only" in out
    assert "input  image" in out and "float32  ?×16×16×3" in out
    assert "variables: 4" in out and "Conv2D ×1" in out


def test_conversion_imports_no_tensorflow():
    code = ("import sys; from tf2torch.sources import open_source; "
            "from tf2torch.conversion.convert import convert_source; "
            f"convert_source(open_source({str(transformer_encoder())!r})); "
            f"convert_source(open_source({str(tf1_graph() / 'model.ckpt.meta')!r})); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- bad input --------------------------------------------------------------------------------

def _cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _refused(capsys, tmp_path, source, match: str) -> None:
    """One clear line, non-zero exit, nothing written."""
    out = tmp_path / "out"
    code, _, err = _cli(capsys, "convert", str(source), "-o", str(out))
    assert code != 0
    errors = [line for line in err.splitlines() if line.startswith("tf2torch: error")]
    assert len(errors) == 1 and match in errors[0], err
    assert not out.exists()


def _copy_saved_model(tmp_path):
    import shutil

    copy = tmp_path / "saved_model"
    shutil.copytree(two_input_module(), copy)
    return copy


def test_truncated_saved_model_pb(tmp_path, capsys):
    copy = _copy_saved_model(tmp_path)
    pb = copy / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:-200])
    _refused(capsys, tmp_path, copy, "not a readable SavedModel (truncated or corrupt")


def test_corrupt_graph_def(tmp_path, capsys):
    bad = tmp_path / "model.pb"
    bad.write_bytes(b"\x0a\xff\xff\xff\xff\x0f" + bytes(range(40)))
    _refused(capsys, tmp_path, bad, "not a readable GraphDef")


def test_saved_model_without_variables(tmp_path, capsys):
    import shutil

    copy = _copy_saved_model(tmp_path)
    shutil.rmtree(copy / "variables")
    _refused(capsys, tmp_path, copy, "no variables bundle (variables/variables.index")


def test_saved_model_whose_bundle_fails_its_crc(tmp_path, capsys):
    copy = _copy_saved_model(tmp_path)
    data = next((copy / "variables").glob("*.data-*"))
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    _refused(capsys, tmp_path, copy, "fails its crc32c check")


def test_missing_signature_on_the_command_line(tmp_path, capsys):
    code, _, err = _cli(capsys, "convert", str(two_input_module()), "--signature", "nope",
                        "-o", str(tmp_path / "out"))
    assert code != 0 and "it has features_only, serving_default" in err
    assert not (tmp_path / "out").exists()


def _control_flow_graph(folder):
    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def model(x):
        y = tf.cond(tf.reduce_sum(x) > 0, lambda: x * 2.0, lambda: x - 1.0)
        _, y = tf.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, y * 1.5),
                             [tf.constant(0), y])
        return tf.math.cumsum(tf.nn.relu(y), axis=1)

    graph_def = model.get_concrete_function().graph.as_graph_def()
    (folder / "control_flow.pb").write_bytes(graph_def.SerializeToString())


def test_control_flow_is_listed_all_at_once(tmp_path, capsys):
    path = cached("control_flow", _control_flow_graph) / "control_flow.pb"
    from tf2torch.conversion.convert import convert_source

    with pytest.raises(UnsupportedError) as err:
        convert_source(open_source(path))
    message = str(err.value)
    for op in ("If", "While", "Cumsum"):
        assert f"{op} ×1" in message, message
    _refused(capsys, tmp_path, path, "unsupported tensorflow ops")


# --- packages and emitted code ------------------------------------------------------------------

def test_package_and_emitted_code_match_tensorflow(tmp_path, capsys):
    """The package (rebuilt from its card) and the standalone emitted module compute
    TensorFlow's outputs, with the batch left open."""
    import importlib.util

    import numpy as np
    import torch

    from tf2torch.api import load
    from tf2torch.verification.checks import graph_reference

    path = two_input_module()
    code, _, err = _cli(capsys, "convert", str(path), "-o", str(tmp_path / "pkg"),
                        "--emit-code", str(tmp_path / "two.py"))
    assert code == 0, err
    rng = np.random.default_rng(1)
    features = rng.uniform(-1, 1, (3, 8)).astype(np.float32)
    image = rng.uniform(-1, 1, (3, 16, 16, 3)).astype(np.float32)
    expected = graph_reference(open_source(path)).run([features, image])
    spec = importlib.util.spec_from_file_location("two", tmp_path / "two.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    emitted = module.load(str(tmp_path / "two.safetensors"))
    text = (tmp_path / "two.py").read_text()
    assert "# StatefulPartitionedCall/Conv2D (Conv2D)" in text
    packaged = load(tmp_path / "pkg").net
    for net in (emitted, packaged):
        with torch.inference_mode():
            embedding, score = net(torch.from_numpy(features), torch.from_numpy(image))
        np.testing.assert_allclose(embedding.numpy(), expected["embedding"], atol=1e-5)
        np.testing.assert_allclose(score.numpy(), expected["score"], atol=1e-5)
