"""SavedModel → PyTorch: tf2torch (no TensorFlow) against the route a user would otherwise
take, tf2onnx then onnx2torch (or onnxruntime), timed in the same run, interleaved.

    python benchmarks/tf_graph_convert.py [--repeats N]

Every step runs in a fresh process, as a user runs it, and is timed by wall clock
(interpreter start and imports included); tf2torch's conversion time inside its process
(reading + converting, imports excluded) is reported too: the first conversion in the
process (which pays torch's one-time set-up of its meta-device kernels, ~1 s) and a second.
Each round runs every contender once, in turn, so they share the machine's drift; the table
gives the median and the range.

Contenders need `tf2onnx` and `onnx2torch`; neither is a dependency. Install them beside the
venv without their dependencies (onnx2torch would pull torchvision and a CUDA torch):

    .venv/bin/pip install --no-deps --target .cache/bench-contenders tf2onnx onnx2torch

(or anywhere, named by `TF2TORCH_BENCH_CONTENDERS`; `TF2TORCH_BENCH_STUBS` moves the stub).

onnx2torch imports torchvision at import time for two ops (NMS, RoiAlign) neither model
uses; torchvision is not installable here without a CUDA torch, so onnx2torch runs with an
import stub for it (`.cache/bench-stubs`, written by this script).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Where the contenders were installed (`pip install --target`) and the import stub is
# written; override to keep them out of a shared cache.
CONTENDERS = Path(os.environ.get("TF2TORCH_BENCH_CONTENDERS", ROOT / ".cache" / "bench-contenders"))
STUBS = Path(os.environ.get("TF2TORCH_BENCH_STUBS", ROOT / ".cache" / "bench-stubs"))
MODELS = ["ResNet50", "MobileNetV2"]

TF2TORCH = """
import json, sys, time
start = time.perf_counter()
from tf2torch.conversion.convert import convert_source
from tf2torch.sources import open_source
imported = time.perf_counter()
convert_source(open_source(sys.argv[1]))
done = time.perf_counter()
convert_source(open_source(sys.argv[1]))  # again: without torch's one-time set-up
again = time.perf_counter()
assert "tensorflow" not in sys.modules
print(json.dumps({"import": imported - start, "convert": done - imported,
                  "again": again - done}))
"""
TF2ONNX = """
import sys, subprocess
subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", sys.argv[1],
                "--output", sys.argv[2], "--opset", "17"], check=True, capture_output=True)
"""
ONNX2TORCH = """
import sys, torch, onnx2torch
onnx2torch.convert(sys.argv[1])
"""
ORT = """
import sys, onnxruntime
onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
"""
TF_LOAD = """
import sys, torch, tensorflow as tf
tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
"""


def _run(code: str, *args: str) -> tuple[float, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
           # this checkout's tf2torch, whatever the venv has installed
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(CONTENDERS), str(STUBS)])}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True,
                         text=True, env=env)
    return time.perf_counter() - start, out.stdout


def _stub_torchvision() -> None:
    ops = STUBS / "torchvision" / "ops"
    ops.mkdir(parents=True, exist_ok=True)
    (STUBS / "torchvision" / "__init__.py").write_text(
        '"""Import stub: onnx2torch imports torchvision for NMS/RoiAlign only."""\n')
    (ops / "__init__.py").write_text(
        "def roi_align(*args, **kwargs):\n    raise NotImplementedError\n\n\n"
        "def nms(*args, **kwargs):\n    raise NotImplementedError\n")


def _export(folder: Path) -> dict[str, Path]:
    paths = {name: folder / name for name in MODELS}
    code = f"""
import torch, keras
for name, path in {json.dumps({k: str(v) for k, v in paths.items()})}.items():
    keras.utils.set_random_seed(0)
    getattr(keras.applications, name)(weights=None).export(path, verbose=False)
"""
    _run(code)
    return paths


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    have_contenders = (CONTENDERS / "tf2onnx").is_dir() and (CONTENDERS / "onnx2torch").is_dir()
    _stub_torchvision()
    rows = ["| Model | tf2torch convert, first (s) | again (s) | tf2torch process (s) | "
            "tf2onnx (s) | onnx2torch (s) | tf2onnx + onnx2torch (s) | onnxruntime session (s) "
            "| TF `saved_model.load` (s) | ratio |", "|---|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, path in _export(folder).items():
            onnx = folder / f"{name}.onnx"
            t: dict[str, list[float]] = {k: [] for k in (
                "inner", "again", "tf2torch", "tf2onnx", "onnx2torch", "ort", "tf")}
            for _ in range(args.repeats):  # one of each per round: shared drift
                wall, out = _run(TF2TORCH, str(path))
                t["tf2torch"].append(wall)
                inner = json.loads(out.strip().splitlines()[-1])
                t["inner"].append(inner["convert"])
                t["again"].append(inner["again"])
                if have_contenders:
                    t["tf2onnx"].append(_run(TF2ONNX, str(path), str(onnx))[0])
                    t["onnx2torch"].append(_run(ONNX2TORCH, str(onnx))[0])
                    t["ort"].append(_run(ORT, str(onnx))[0])
                t["tf"].append(_run(TF_LOAD, str(path))[0])
                print(name, {k: round(v[-1], 2) for k, v in t.items() if v}, flush=True)
            route = [a + b for a, b in zip(t["tf2onnx"], t["onnx2torch"], strict=True)]
            ratio = (f"{statistics.median(route) / statistics.median(t['tf2torch']):.1f}×"
                     if route else "-")
            rows.append(" | ".join([f"| {name}", _spread(t["inner"]), _spread(t["again"]),
                                    _spread(t["tf2torch"]),
                                    *(_spread(t[k]) if t[k] else "-" for k in (
                                        "tf2onnx", "onnx2torch")),
                                    _spread(route) if route else "-",
                                    _spread(t["ort"]) if t["ort"] else "-",
                                    _spread(t["tf"]), ratio]) + " |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
