"""MediaPipe's own runtime as the reference for `.tflite` files that only it can run.

Some published MediaPipe models (face_landmark_with_attention) use custom ops that only
MediaPipe's op resolver registers; TensorFlow's TFLite interpreter refuses to allocate them.
mediapipe 0.10 cannot share an environment with TensorFlow (it pins numpy<2, protobuf<5), so
the reference runs in a Python of its own, named by `TF2TORCH_MEDIAPIPE_PYTHON`, through
`_mediapipe_worker.py` in a subprocess. To make one (prints its python):

    python -m tf2torch.references.mediapipe_runtime ~/.cache/tf2torch/mediapipe-runtime

Only what the calculator graph needs is installed: the wheel without its dependencies, plus
numpy, protobuf, absl-py, attrs and flatbuffers (not OpenCV, matplotlib, jax, sounddevice).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import venv
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from tf2torch.errors import MissingDependencyError, SourceError
from tf2torch.sources.tflite.graph import output_names, unique_names
from tf2torch.sources.tflite.schema import TflModel

PYTHON_ENV = "TF2TORCH_MEDIAPIPE_PYTHON"
# Registered by MediaPipe's op resolver, not by TensorFlow's interpreter.
MEDIAPIPE_ONLY_OPS = frozenset({"Landmarks2TransformMatrix", "TransformLandmarks",
                                "TransformTensorBilinear"})
_WORKER = Path(__file__).with_name("_mediapipe_worker.py")
WHEEL = "mediapipe==0.10.14"  # the last release whose wheel ships its .tflite files
_NEEDS = ["numpy<2", "protobuf>=4.25.3,<5", "absl-py", "attrs>=19.1.0", "flatbuffers>=2.0"]
_MAKE = "python -m tf2torch.references.mediapipe_runtime DIR"


def mediapipe_only_ops(ops: Iterable[str]) -> list[str]:
    """Of these op names (e.g. `source.graph.op_counts()`), those only MediaPipe runs, sorted."""
    return sorted(MEDIAPIPE_ONLY_OPS.intersection(ops))


def mediapipe_runner(path: str | Path, model: TflModel, python: str | None = None):
    """A callable: NHWC batch → every output, named as the converted module's, computed by
    MediaPipe's InferenceCalculator (TFLite CPU kernels + MediaPipe's custom ops)."""
    path = Path(path)
    python = python or os.environ.get(PYTHON_ENV)
    if not python:
        ops = ", ".join(mediapipe_only_ops(op.op for op in model.subgraphs[0].operators))
        raise MissingDependencyError(
            f"{path}: uses MediaPipe custom ops ({ops}) that TensorFlow's TFLite interpreter "
            f"cannot run; to verify against MediaPipe's runtime, set {PYTHON_ENV} to a Python "
            f"with mediapipe 0.10 installed ({_MAKE} makes one)")
    sub = model.subgraphs[0]
    if len(sub.inputs) != 1:
        raise SourceError(f"{path}: the MediaPipe reference feeds one input, the file has "
                          f"{len(sub.inputs)}")
    names = output_names(model, sub, unique_names(sub))
    shapes = [sub.tensors[i].shape for i in sub.outputs]

    def run(inputs: np.ndarray | list[np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs[0] if isinstance(inputs, list | tuple) else inputs
        with tempfile.TemporaryDirectory() as tmp:
            given, got = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
            np.savez(given, x=np.asarray(x, np.float32))
            done = subprocess.run([python, str(_WORKER), str(path.resolve()), str(len(names)),
                                   str(given), str(got)], capture_output=True, text=True)
            if done.returncode != 0:
                tail = done.stderr.strip().splitlines()[-3:]
                raise SourceError(f"{path}: MediaPipe's runtime failed: {' | '.join(tail)}")
            with np.load(got) as out:
                return {name: out[f"o{i}"].reshape(len(x), *shape[1:])
                        for i, (name, shape) in enumerate(zip(names, shapes, strict=True))}

    return run


def make_runtime(target: Path) -> Path | None:
    """A venv at `target` with MediaPipe's runtime; its python, or None when pip failed
    (offline). Idempotent: `DONE` is written last, and a failed install removes what it built,
    so no half-built venv is left for the tests to trip on."""
    python = target / "bin" / "python"
    if (target / "DONE").exists():
        return python
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    venv.create(target, with_pip=True, clear=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for step in ([*pip, "--no-deps", "--only-binary=:all:", WHEEL], [*pip, *_NEEDS]):
        # captured: pip's complaint about the dependencies left out on purpose is noise
        done = subprocess.run(step, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            print(*done.stderr.strip().splitlines()[-1:], file=sys.stderr)
            shutil.rmtree(target, ignore_errors=True)  # no half-built venv for tests to trip on
            return None
    (target / "DONE").write_text(WHEEL + "\n")
    return python


if __name__ == "__main__":
    made = make_runtime(Path(sys.argv[1]))
    if made:
        print(made)
    elif os.environ.get("TF2TORCH_OFFLINE") == "1":
        print(f"note: could not install {WHEEL}; TF2TORCH_OFFLINE=1, so the tests that need "
              "MediaPipe's runtime will skip")
    else:
        sys.exit(f"error: could not install {WHEEL}; the tests need MediaPipe's runtime. Run "
                 "where PyPI is reachable, or set TF2TORCH_OFFLINE=1 to skip them knowingly.")
