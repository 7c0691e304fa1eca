"""Published TFLite vision models that PyPI packages ship (MediaPipe), against TFLite.

Skipped unless the models are at hand: either `mediapipe` (0.10.x, which ships its .tflite
files) is installed, or TF2TORCH_MEDIAPIPE_DIR names an unpacked wheel's `mediapipe` folder.
mediapipe is not a dependency of tf2torch (about 35 MB and pins its own numpy/protobuf).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

import numpy as np
import torch

from tf2torch.conversion.convert import convert_source
from tf2torch.errors import MissingDependencyError, Tf2TorchError
from tf2torch.references.mediapipe_runtime import PYTHON_ENV, mediapipe_runner
from tf2torch.references.tflite import tflite_runner
from tf2torch.sources import open_source
from tf2torch.sources.tflite.metadata import input_ranges
from tf2torch.sources.tflite.reader import read_tflite_model
from tf2torch.verification.checks import graph_reference, verify_graph
from tflite_models import verify_tflite

# Converted and verified within the tolerance (docs/tflite_compatibility.md has the figures).
PASSING = [
    "face_detection/face_detection_short_range.tflite",
    "face_detection/face_detection_full_range_sparse.tflite",
    "pose_detection/pose_detection.tflite",
    "face_landmark/face_landmark.tflite",
    "hand_landmark/hand_landmark_lite.tflite",
    "hand_landmark/hand_landmark_full.tflite",
    "holistic_landmark/hand_recrop.tflite",
    "iris_landmark/iris_landmark.tflite",
    "palm_detection/palm_detection_lite.tflite",
    "palm_detection/palm_detection_full.tflite",
    "selfie_segmentation/selfie_segmentation.tflite",
    "selfie_segmentation/selfie_segmentation_landscape.tflite",
]
# Above the bound, but no farther from the interpreter than TFLite's own runtimes (XNNPACK,
# builtin and reference kernels) are from each other on the same input: ill-conditioned.
WITHIN_RUNTIME_SPREAD = ["pose_landmark/pose_landmark_full.tflite"]
# Using MediaPipe-only custom ops (Landmarks2TransformMatrix, TransformLandmarks,
# TransformTensorBilinear): verified against MediaPipe's own runtime.
MEDIAPIPE_RUNTIME = ["face_landmark/face_landmark_with_attention.tflite"]


def _modules_dir() -> Path | None:
    env = os.environ.get("TF2TORCH_MEDIAPIPE_DIR")
    if env:
        return Path(env) / "modules"
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "modules"


def _model(relative: str) -> Path:
    folder = _modules_dir()
    if folder is None or not (folder / relative).exists():
        pytest.skip(f"{relative}: mediapipe 0.10.x models not available")
    return folder / relative


@pytest.mark.parametrize("relative", PASSING)
def test_published_model_matches_interpreter(relative: str) -> None:
    """As `tf2torch verify` runs it: random inputs in the range the file's metadata states."""
    source = open_source(_model(relative))
    report = verify_graph(convert_source(source), graph_reference(source))
    assert all(c.within_bound for c in report.comparisons), report.table()


@pytest.mark.parametrize("relative", PASSING[:3])
def test_published_model_matches_interpreter_on_minus_one_to_one(relative: str) -> None:
    """Outside the stated range too (the wider of the two usual conventions)."""
    report = verify_tflite(_model(relative))
    assert report.passed, report.table()


def test_input_ranges_come_from_the_files_metadata() -> None:
    ranges = {rel: input_ranges(open_source(_model(rel)), 1)[0] for rel in (
        "face_detection/face_detection_short_range.tflite", "face_landmark/face_landmark.tflite",
        "holistic_landmark/hand_recrop.tflite")}
    assert list(ranges.values()) == [(-1.0, 1.0), (0.0, 1.0), None]  # NormalizationOptions


@pytest.mark.parametrize("relative", WITHIN_RUNTIME_SPREAD)
def test_ill_conditioned_model_is_within_the_interpreters_own_spread(relative: str) -> None:
    source = open_source(_model(relative))
    report = verify_graph(convert_source(source), graph_reference(source))
    beyond = [c for c in report.comparisons if not c.within_bound]
    assert beyond, "expected outputs above the 1e-4 bound (else move it to PASSING)"
    assert report.passed, report.table()
    # TFLite's runtimes themselves disagree beyond the bound there
    assert all(c.reference_spread > c.bound for c in beyond)
    assert "ok*" in report.table()


def test_a_broken_port_is_not_excused_by_the_spread() -> None:
    """On a well-conditioned model the runtimes agree to ~1e-6: one damaged weight fails."""
    source = open_source(_model(PASSING[0]))
    conversion = convert_source(source)
    conv = next(m for m in conversion.net.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        conv.weight[0].mul_(1.01)
    report = verify_graph(conversion, graph_reference(source))
    failed = [c for c in report.comparisons if not c.passed]
    assert failed and all(c.reference_spread is not None and c.reference_spread < c.max_abs
                          for c in failed), report.table()


def _mediapipe_python() -> str:
    python = os.environ.get(PYTHON_ENV)
    if not python or not Path(python).exists():
        pytest.skip(f"{PYTHON_ENV} names no Python with mediapipe "
                    "(python -m tf2torch.references.mediapipe_runtime DIR makes one)")
    return python


def test_mediapipe_runtime_agrees_with_the_tflite_interpreter() -> None:
    """The MediaPipe reference feeds arbitrary float inputs unchanged: on a model both
    runtimes run, it matches TensorFlow's interpreter within the usual bound."""
    path = _model("face_landmark/face_landmark.tflite")
    x = np.random.default_rng(0).uniform(-1, 1, (2, 192, 192, 3)).astype(np.float32)
    theirs = mediapipe_runner(path, read_tflite_model(path), _mediapipe_python())(x)
    ours = tflite_runner(path)(x)
    assert ours.keys() == theirs.keys()
    for name, ref in ours.items():
        assert np.abs(theirs[name] - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max()), name


@pytest.mark.parametrize("relative", MEDIAPIPE_RUNTIME)
def test_model_with_mediapipe_custom_ops_matches_mediapipe(relative: str, monkeypatch) -> None:
    monkeypatch.setenv(PYTHON_ENV, _mediapipe_python())
    source = open_source(_model(relative))
    reference = graph_reference(source)
    assert reference.description.startswith("MediaPipe runtime")
    report = verify_graph(convert_source(source), reference)
    assert report.passed and all(c.within_bound for c in report.comparisons), report.table()


def test_without_mediapipe_the_reference_names_the_ops_and_the_fix(monkeypatch) -> None:
    monkeypatch.delenv(PYTHON_ENV, raising=False)
    with pytest.raises(MissingDependencyError, match=f"TransformTensorBilinear.*{PYTHON_ENV}"):
        graph_reference(open_source(_model(MEDIAPIPE_RUNTIME[0])))


def test_per_op_comparison_explains_why_mediapipe_ops_cannot_be_traced() -> None:
    from tf2torch.api import verify_layers

    with pytest.raises(Tf2TorchError, match="per-op comparison needs TensorFlow's interpreter"):
        verify_layers(_model(MEDIAPIPE_RUNTIME[0]))


@pytest.mark.parametrize("relative", ["face_detection/face_detection_short_range.tflite",
                                      "selfie_segmentation/selfie_segmentation.tflite"])
def test_emitted_code_of_a_tflite_model_matches_the_interpreter(relative: str, tmp_path) -> None:
    """--emit-code for TFLite: the standalone file (TFLite and custom-op runtimes copied in,
    in namespaces of their own) runs with torch + safetensors only — in a fresh interpreter
    where tf2torch cannot be imported — and matches the interpreter."""
    import subprocess
    import sys

    from tf2torch.conversion.graph.codegen import emit_code

    path = _model(relative)
    conversion = convert_source(open_source(path))
    source = emit_code(conversion.graph_conversion, tmp_path / "model.py", tmp_path / "w.safetensors")
    x = np.random.default_rng(0).uniform(0, 1, (1, *conversion.inputs[0][1])).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys, runpy, numpy as np, torch\n"
        "sys.modules['tf2torch'] = None  # the emitted file must not need tf2torch\n"
        f"ns = runpy.run_path({str(source)!r})\n"
        f"net = ns['load']({str(tmp_path / 'w.safetensors')!r})\n"
        "with torch.inference_mode():\n"
        f"    out = net(torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r})))\n"
        "out = out if isinstance(out, tuple) else (out,)\n"
        f"np.savez({str(tmp_path / 'y.npz')!r}, *[o.numpy() for o in out])\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    saved = np.load(tmp_path / "y.npz")
    ours = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    theirs = tflite_runner(path)(x)
    for got, (name, ref) in zip(ours, theirs.items(), strict=True):
        assert np.abs(got - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max()), name


@pytest.mark.parametrize("relative", ["face_detection/face_detection_short_range.tflite",
                                      "hand_landmark/hand_landmark_lite.tflite"])
def test_published_model_compiles_mirrored_and_matches_interpreter(relative: str) -> None:
    """The compiler's rewrites of the single-image program on published files: their
    after-only pads go, the detector's anchor reshapes get their inputs flipped back
    (`packages/mirror.py`), the depthwise layers become sums (`packages/depthwise.py`), and
    every output still matches TFLite's interpreter."""
    from tf2torch.packages.depthwise import depthwise_as_sums
    from tf2torch.packages.inference import inference_form
    from tf2torch.packages.mirror import mirrored_module

    path = _model(relative)
    conversion = convert_source(open_source(path))
    shape = tuple(conversion.inputs[0][1])
    form = inference_form(conversion.net, shape, governed=False, input_layout="nhwc")
    with torch.no_grad():
        program = torch.export.export(form, (torch.zeros(1, *shape),))
        pads_before = sum("pad" in str(n.target) for n in program.graph.nodes)
        gm = mirrored_module(program, "nhwc")
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert torch.ops.aten.flip.default in targets, "not mirrored"
    assert sum("pad" in str(t) for t in targets) < pads_before
    assert depthwise_as_sums(gm) >= 5
    x = np.random.default_rng(4).uniform(-1, 1, (1, *shape)).astype(np.float32)
    with torch.no_grad():
        out = gm(torch.from_numpy(x))
    ours = dict(zip(conversion.outputs, out if isinstance(out, list | tuple) else [out],
                    strict=True))
    for name, ref in tflite_runner(path)(x).items():
        assert np.abs(ours[name].numpy() - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max()), \
            name
