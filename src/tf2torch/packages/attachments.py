"""Optional files a package may carry beside its weights and card, by fixed names.

A package is `model.safetensors` + `card.json` + `README.md`; later steps may add proofs and
other forms of the model to the same folder: the per-layer report and its plot (`tf2torch
verify SOURCE --per-layer --package NAME`) and the standalone code (`convert --emit-code`).
The names are fixed, so readers (the web pages, a model hub) find them without a manifest,
and nothing else in a package folder is ever served or trusted. Each file is written
atomically: a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tf2torch.errors import PackageError
from tf2torch.verification.stored import FILE_NAME as STORED_OUTPUTS

if TYPE_CHECKING:  # the report's module is heavier than what readers of this one need
    from tf2torch.verification.layerwise.report import LayerReport


@dataclass(frozen=True)
class PackageFile:
    """A file a package may hold: its fixed name, what it is, and its media type."""

    name: str
    title: str
    media_type: str


# The core files first, then the optional ones; the order is the order pages list them in.
CORE_FILES = (
    PackageFile("model.safetensors", "weights (safetensors)", "application/octet-stream"),
    PackageFile("card.json", "model card (JSON)", "application/json"),
    PackageFile("README.md", "model card (Markdown)", "text/markdown; charset=utf-8"),
)
PER_LAYER_REPORT = PackageFile("per_layer.json", "per-layer comparison (JSON)",
                               "application/json")
PER_LAYER_PLOT = PackageFile("per_layer.png", "per-layer error plot (PNG)", "image/png")
CODE = PackageFile("model.py", "standalone PyTorch code (--emit-code)", "text/x-python; charset=utf-8")
ONNX = PackageFile("model.onnx", "ONNX export", "application/octet-stream")
REFERENCE_OUTPUTS = PackageFile(STORED_OUTPUTS, "the original's outputs on the verification "
                                "inputs (safetensors)", "application/octet-stream")
OPTIONAL_FILES = (PER_LAYER_REPORT, PER_LAYER_PLOT, CODE, ONNX, REFERENCE_OUTPUTS)
PACKAGE_FILES: dict[str, PackageFile] = {f.name: f for f in (*CORE_FILES, *OPTIONAL_FILES)}


def attach_bytes(package: Path, name: str, data: bytes) -> Path:
    """Write `data` as the optional file `name` of the package at `package`, atomically."""
    if name not in {f.name for f in OPTIONAL_FILES}:
        raise PackageError(f"{name!r} is not a file a package may carry; known: "
                           f"{', '.join(f.name for f in OPTIONAL_FILES)}")
    if not (package / "card.json").is_file():
        raise PackageError(f"{package}: no card.json — not a tf2torch package")
    fd, temp = tempfile.mkstemp(prefix=f".{name}.partial-", dir=package)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(temp, 0o644)
        os.replace(temp, package / name)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return package / name


def attach_file(package: Path, name: str, source: Path) -> Path:
    """Copy the file at `source` into the package as `name` (see `attach_bytes`)."""
    return attach_bytes(package, name, Path(source).read_bytes())


def record_layer_report(package: Path, report: LayerReport) -> list[Path]:
    """Store a per-layer report in the package: its JSON, and its plot when matplotlib is
    installed (the `[plot]` extra); returns the files written."""
    written = [attach_bytes(package, PER_LAYER_REPORT.name, report.to_json().encode())]
    try:
        import matplotlib  # noqa: F401 - only to know whether a plot can be drawn
    except ImportError:
        return written
    with tempfile.TemporaryDirectory() as scratch:
        plot = report.plot(Path(scratch) / PER_LAYER_PLOT.name)
        written.append(attach_file(package, PER_LAYER_PLOT.name, plot))
    return written
