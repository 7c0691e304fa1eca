"""ONNX and torch.export forms of a converted package, checked against PyTorch and TensorFlow."""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from tf2torch.api import convert
from tf2torch.errors import MissingDependencyError, VerificationError
from tf2torch.packages import export as export_module
from tf2torch.packages.export import (
    export_onnx,
    export_program,
    onnx_runner,
    program_runner,
    with_onnxruntime,
)
from tf2torch.packages.package import LoadedModel, load_package

TF_TOL = 1e-4


@pytest.fixture(scope="module")
def package(standin, tmp_path_factory: pytest.TempPathFactory) -> tuple[LoadedModel, Path]:
    release = standin(0.35, 96, tflite=False, pack=False)
    folder = tmp_path_factory.mktemp("pkg") / "mobilenet_v2_0.35_96"
    convert(release.prefix, folder)
    return load_package(folder), release.tests_h5


def tf_cases(tests_h5: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """NCHW inputs and TensorFlow's logits for them."""
    with h5py.File(tests_h5) as f:
        random_input = f["RandomInput"][()]
        zeros = np.zeros_like(random_input[:1])
        cases = {"zeros": (zeros, f["LogitsForZeros"][()]),
                 "random": (random_input, f["LogitsForRandom"][()])}
    return {k: (np.ascontiguousarray(x.transpose(0, 3, 1, 2)), ref.reshape(len(x), -1))
            for k, (x, ref) in cases.items()}


@pytest.fixture(scope="module")
def onnx_export(package, tmp_path_factory: pytest.TempPathFactory) -> export_module.ExportReport:
    model, _ = package
    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "out" / "model.onnx")


def test_onnx_export_matches_pytorch_and_tensorflow(package, onnx_export) -> None:
    _, tests_h5 = package
    report = onnx_export
    assert report.passed and report.format == "onnx" and report.opset == 17
    assert set(report.max_abs_diff) == {"zeros", "random"}
    assert report.path.name == "model.onnx" and report.path.exists()
    assert [p.name for p in report.path.parent.iterdir()] == ["model.onnx"]  # no partials left
    run = onnx_runner(report.path, threads=1)
    for case, (inputs, expected) in tf_cases(tests_h5).items():
        assert np.abs(run(inputs) - expected).max() <= TF_TOL, case
    assert run(np.zeros((5, 3, 96, 96), np.float32)).shape == (5, 1001)  # dynamic batch


def test_program_export_matches_tensorflow(package, tmp_path: Path) -> None:
    model, tests_h5 = package
    report = export_program(model.net, tmp_path / "model.pt2", (3, 96, 96))
    assert report.passed and report.format == "torch.export"
    run = program_runner(report.path)
    for case, (inputs, expected) in tf_cases(tests_h5).items():
        assert np.abs(run(inputs) - expected).max() <= TF_TOL, case


def test_onnxruntime_backend_classifies_like_pytorch(package, onnx_export) -> None:
    model, _ = package
    image = np.random.default_rng(0).integers(0, 256, (120, 100, 3), dtype=np.uint8)
    onnx_model, report = with_onnxruntime(model, onnx_export.path, threads=1)
    assert report is None  # an existing export is reused, not redone
    assert isinstance(onnx_model.net, export_module.OnnxRuntimeNet)
    ours, theirs = onnx_model.classify([image], top=3), model.classify([image], top=3)
    assert [p.label for p in ours[0]] == [p.label for p in theirs[0]]
    assert np.allclose([p.probability for p in ours[0]], [p.probability for p in theirs[0]],
                       atol=1e-5)


def test_export_disagreeing_with_pytorch_fails(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    real = export_module.onnx_runner

    def off_by_one(path, threads=None):
        run = real(path, threads)
        return lambda batch: run(batch) + 1.0

    monkeypatch.setattr(export_module, "onnx_runner", off_by_one)
    with pytest.raises(VerificationError, match="disagrees with PyTorch"):
        export_onnx(torch.nn.Conv2d(3, 2, 1), tmp_path / "bad.onnx", (3, 4, 4))
    assert not list(tmp_path.iterdir())  # nothing written


def test_missing_onnxruntime_is_a_clear_error(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError, match="pip install onnxruntime"):
        export_onnx(torch.nn.Conv2d(3, 2, 1), tmp_path / "conv.onnx", (3, 4, 4))


def test_bare_module_needs_a_sample_shape(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sample_shape"):
        export_onnx(torch.nn.Conv2d(3, 2, 1), tmp_path / "conv.onnx")
