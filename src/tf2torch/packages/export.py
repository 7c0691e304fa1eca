"""Export a converted network to ONNX or `torch.export`, each checked against PyTorch.

ONNX goes through the TorchScript-based exporter (`dynamo=False`): the dynamo exporter needs
`onnxscript`, which is not a dependency. The batch dimension is dynamic in both forms; the
checks run a batch of one (zeros) and a batch of two (seeded uniform [-1, 1]) so a batch size
baked in by tracing would be caught.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tf2torch.errors import MissingDependencyError, VerificationError
from tf2torch.packages.package import LoadedModel

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
TOLERANCE = 1e-4
# Traced at batch 2: a batch of 1 lets the tracer specialise the batch dimension to a constant.
_TRACE_BATCH = 2


@dataclass(frozen=True)
class ExportReport:
    """An exported file and how far its outputs are from the PyTorch module's, per input."""

    path: Path
    format: str                 # "onnx" or "torch.export"
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    tolerance: float = TOLERANCE
    opset: int | None = None

    @property
    def checked(self) -> bool:
        return bool(self.max_abs_diff)

    @property
    def passed(self) -> bool:
        return self.checked and max(self.max_abs_diff.values()) <= self.tolerance

    def summary(self) -> str:
        if not self.checked:
            return f"{self.path} ({self.format}): written, not checked"
        diffs = ", ".join(f"{case} {diff:.2e}" for case, diff in self.max_abs_diff.items())
        verdict = "ok" if self.passed else "FAILED"
        return f"{self.path} ({self.format}): max |Δ| vs PyTorch {diffs} " \
               f"(tolerance {self.tolerance:g}) {verdict}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "format": self.format, "opset": self.opset,
                "max_abs_diff": self.max_abs_diff, "tolerance": self.tolerance,
                "passed": self.passed}


def check_inputs(sample_shape: Sequence[int], seed: int = 0) -> dict[str, np.ndarray]:
    """Zeros at batch 1 and seeded uniform [-1, 1] at batch 2 (the slim input range)."""
    one = _one_sample(sample_shape)
    rng = np.random.default_rng(seed)
    return {"zeros": np.zeros((1, *one), np.float32),
            "random": rng.uniform(-1, 1, (2, *one)).astype(np.float32)}


def export_onnx(model: LoadedModel | nn.Module, path: str | Path,
                sample_shape: Sequence[int] | None = None, opset: int = 17, check: bool = True,
                tolerance: float = TOLERANCE) -> ExportReport:
    """Write `model` as ONNX (input `images`, output `logits`, dynamic batch) and check it.

    `sample_shape` is one input's shape (C, H, W), read from a package's card when omitted.
    With `check`, the file is run in onnxruntime and compared with PyTorch; an absent
    onnxruntime or a difference above `tolerance` raises. The file is written atomically.
    """
    net, shape = _net_and_shape(model, sample_shape)
    path = Path(path)
    example = torch.zeros(_TRACE_BATCH, *shape)
    with _atomic(path) as temp:
        torch.onnx.export(
            net, (example,), str(temp), dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
        report = ExportReport(temp, "onnx", tolerance=tolerance, opset=opset)
        if check:
            report = _checked(report, net, onnx_runner(temp), shape)
    return replace(report, path=path)


def export_program(model: LoadedModel | nn.Module, path: str | Path,
                   sample_shape: Sequence[int] | None = None, check: bool = True,
                   tolerance: float = TOLERANCE) -> ExportReport:
    """Write `model` as a `torch.export` program (`.pt2`, dynamic batch) and check it.

    Load it back with `torch.export.load(path).module()`: no tf2torch needed to run it.
    """
    net, shape = _net_and_shape(model, sample_shape)
    path = Path(path)
    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad():
        program = torch.export.export(net, (torch.zeros(_TRACE_BATCH, *shape),),
                                      dynamic_shapes=({0: batch},))
    with _atomic(path) as temp:
        torch.export.save(program, str(temp))
        report = ExportReport(temp, "torch.export", tolerance=tolerance)
        if check:
            report = _checked(report, net, program_runner(temp), shape)
    return replace(report, path=path)


def onnx_runner(path: str | Path, threads: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """An onnxruntime session on the CPU as a function: NCHW float32 batch → logits."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise MissingDependencyError(
            "onnxruntime is needed to run or check an ONNX export: pip install onnxruntime"
        ) from exc
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(batch, np.float32)})[0]

    return run


def program_runner(path: str | Path) -> Callable[[np.ndarray], np.ndarray]:
    """A saved `torch.export` program as a function: NCHW float32 batch → logits."""
    module = torch.export.load(str(path)).module()

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(batch)).numpy()

    return run


class OnnxRuntimeNet(nn.Module):
    """An ONNX export behind the `nn.Module` call interface, for `LoadedModel.net`.

    Lets `LoadedModel.classify` (and `predict --backend onnxruntime`) run the export while
    keeping the package's encoder and decoder.
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self._run = onnx_runner(self.path, threads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._run(x.detach().cpu().numpy()))


def with_onnxruntime(model: LoadedModel, onnx_path: str | Path | None = None,
                     threads: int | None = None) -> tuple[LoadedModel, ExportReport | None]:
    """`model` running on onnxruntime: its verified export, made (and checked) when absent.

    Without `onnx_path` the export is kept beside the repository, keyed by the weights'
    sha256, so it is checked once and reused by later calls.
    """
    path = Path(onnx_path) if onnx_path else _cached_onnx_path(model)
    report = None
    if not path.exists():
        report = export_onnx(model, path)
    return replace(model, net=OnnxRuntimeNet(path, threads)), report


def _cached_onnx_path(model: LoadedModel) -> Path:
    from tf2torch.packages.repository import home

    return home() / "exports" / f"{model.card.name}-{model.card.weights_sha256[:16]}.onnx"


def _checked(report: ExportReport, net: nn.Module, run: Callable[[np.ndarray], np.ndarray],
             shape: Sequence[int]) -> ExportReport:
    diffs = {}
    for case, batch in check_inputs(shape).items():
        with torch.no_grad():
            expected = net(torch.from_numpy(batch)).numpy()
        actual = run(batch)
        if actual.shape != expected.shape:
            raise VerificationError(f"{report.format} export gives shape {actual.shape} for "
                                    f"input {batch.shape}; PyTorch gives {expected.shape}")
        diffs[case] = float(np.abs(actual - expected).max())
    report = replace(report, max_abs_diff=diffs)
    if not report.passed:
        raise VerificationError(f"the export disagrees with PyTorch: {report.summary()}")
    return report


def _net_and_shape(model: LoadedModel | nn.Module,
                   sample_shape: Sequence[int] | None) -> tuple[nn.Module, tuple[int, ...]]:
    if isinstance(model, LoadedModel):
        # the card stores one sample's shape in the module's own layout
        net = model.net
        shape = tuple(sample_shape if sample_shape is not None else model.card.input["shape"])
    elif sample_shape is None:
        raise ValueError("sample_shape is needed to export a bare nn.Module")
    else:
        net, shape = model, tuple(sample_shape)
    return net.eval(), _one_sample(shape)


def _one_sample(shape: Sequence[int]) -> tuple[int, ...]:
    """(C, H, W) from either one sample's shape or a batch's."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 4:
        return shape[1:]
    if len(shape) != 3:
        raise ValueError(f"sample_shape {shape}: expected (C, H, W) or (N, C, H, W)")
    return shape


class _atomic:
    """Write to a temporary file beside `path`, renamed over it only when the block succeeds."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".partial",
                                    dir=self.path.parent)
        os.close(fd)
        self.temp = Path(name)
        return self.temp

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            os.replace(self.temp, self.path)
        else:
            self.temp.unlink(missing_ok=True)
