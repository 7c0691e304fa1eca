"""Graph-converted Keras applications against onnxruntime and Keras, each runtime in its own
process, rounds interleaved (the issue-13 target for Keras models).

    .venv/bin/python benchmarks/keras_runtimes.py [--models MobileNetV2,EfficientNetB0,ResNet50]
        [--rounds 3] [--iters-1 20] [--iters-32 3] [--runtimes keras,form,compiled,onnxruntime]
        [--cache DIR]

Per model, made once into the cache: the `keras.applications` model (seeded random weights,
224×224, NHWC), its tf2torch package (converted and verified against Keras), that package's
compiled form (`tf2torch compile`) and its ONNX export (checked in onnxruntime). Then, in each
round, one fresh process per runtime: Keras in a `tf.function`, the compiled form
(`load(NAME, inference=True)`), the eager inference form, onnxruntime on the export. All
get 2 threads. Figures as in `inference.py`: median of the round medians, spread
lowest-highest round, "ready" from process start to the first answer; then the compiled form
against onnxruntime round by round (run back to back, each pair shares the machine's phase),
with the median and quartiles of those ratios. `--runtimes compiled,onnxruntime --rounds 12`
runs that pair alone, many times over, for a ratio the machine's phases cannot decide.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inference
from inference import REPO, THREADS, _cpu_model, _median_seconds, _python, _row, round_ratios

SIZE = 224
RUNTIMES = {
    "keras": "Keras (tf.function)",
    "form": "inference form, eager",
    "compiled": "compiled form (`tf2torch compile`)",
    "onnxruntime": "onnxruntime (the package's ONNX export)",
}

_PREPARE = """
import sys
from pathlib import Path
import torch  # before tensorflow
import keras
name, folder = sys.argv[1], Path(sys.argv[2])
folder.mkdir(parents=True, exist_ok=True)
keras.utils.set_random_seed(0)
getattr(keras.applications, name)(weights=None).save(folder / "model.keras")
from tf2torch.api import convert
from tf2torch.packages.package import load_package
from tf2torch.packages.export import export_onnx
result = convert(folder / "model.keras", folder / "package", verify=True)
print("verified against Keras:", result.verification.passed)
print(export_onnx(load_package(folder / "package"), folder / "model.onnx").summary())
"""


def prepare(cache: Path, model: str) -> Path:
    folder = cache / model
    if not (folder / "model.onnx").exists():
        _python(["-c", _PREPARE, model, str(folder)], timeout=1800)
    inference.ensure_compiled(folder / "package")
    return folder


def run_worker(runtime: str, folder: Path, iters_1: int, iters_32: int, spawned_at: float) -> dict:
    forward = FACTORIES[runtime](folder)
    rng = np.random.default_rng(0)
    one = rng.uniform(-1, 1, (1, SIZE, SIZE, 3)).astype(np.float32)
    many = rng.uniform(-1, 1, (32, SIZE, SIZE, 3)).astype(np.float32)
    forward(one)
    ready_s = time.time() - spawned_at
    batch_1 = _median_seconds(forward, one, iters_1, warmup=5)
    batch_32 = _median_seconds(forward, many, iters_32, warmup=2)
    return {"b1_ms": round(batch_1 * 1e3, 2), "b32_ips": round(32 / batch_32, 1),
            "setup_s": round(ready_s, 2)}


def keras_forward(folder: Path) -> Callable[[np.ndarray], object]:
    import torch  # noqa: F401, I001 - before tensorflow
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model = keras.models.load_model(folder / "model.keras", compile=False)
    call = tf.function(lambda x: model(x, training=False))
    return lambda x: call(x).numpy()


def torch_forward(runtime: str, folder: Path) -> Callable[[np.ndarray], object]:
    """`inference.py`'s torch forms, on this model's package (NHWC in)."""
    return inference.torch_forward(runtime, {"package": folder / "package"},
                                   sample_shape=(SIZE, SIZE, 3), layout="nhwc")


def onnxruntime_forward(folder: Path) -> Callable[[np.ndarray], object]:
    from tf2torch.packages.export import onnx_runner

    return onnx_runner(folder / "model.onnx", threads=THREADS)


FACTORIES = {"keras": keras_forward, "onnxruntime": onnxruntime_forward,
             "form": lambda f: torch_forward("form", f),
             "compiled": lambda f: torch_forward("compiled", f)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="MobileNetV2,EfficientNetB0,ResNet50")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters-1", type=int, default=20)
    parser.add_argument("--iters-32", type=int, default=3)
    parser.add_argument("--runtimes", default=",".join(RUNTIMES),
                        help="which of them (compiled,onnxruntime: many rounds of the pair)")
    parser.add_argument("--cache", default=str(REPO / ".cache" / "benchmarks-keras"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--spawned-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_worker(args.worker, Path(args.folder), args.iters_1, args.iters_32,
                                    args.spawned_at)))
        return 0
    runtimes = args.runtimes.split(",")
    if unknown := set(runtimes) - set(RUNTIMES):
        parser.error(f"--runtimes: {', '.join(sorted(unknown))}; give some of {', '.join(RUNTIMES)}")
    folders = {m: prepare(Path(args.cache), m) for m in args.models.split(",")}
    load_before = os.getloadavg()
    results = {m: {r: [] for r in runtimes} for m in folders}
    for round_index in range(args.rounds):
        # the order turns each round, so neither of a pair always runs first
        order = runtimes[round_index % len(runtimes):] + runtimes[:round_index % len(runtimes)]
        for model, folder in folders.items():
            for runtime in order:
                out = _python([__file__, "--worker", runtime, "--folder", str(folder),
                               "--iters-1", str(args.iters_1), "--iters-32", str(args.iters_32),
                               "--spawned-at", repr(time.time())], timeout=900)
                results[model][runtime].append(json.loads(out.strip().splitlines()[-1]))
                print(f"round {round_index + 1} {model} {runtime}: "
                      f"{results[model][runtime][-1]}", file=sys.stderr)
    print(f"### Keras applications, {datetime.now():%Y-%m-%d %H:%M}\n\nMachine: {_cpu_model()}, "
          f"{THREADS} threads per runtime; load average {load_before[0]:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after. {args.rounds} rounds.\n")
    for model, by_runtime in results.items():
        print(f"| {model} | batch 1 latency (ms): median (spread) | batch 32 (img/s): median "
              "(spread) | ready (s) |\n|---|---:|---:|---:|")
        for runtime, runs in by_runtime.items():
            print(_row(RUNTIMES[runtime], runs))
        if {"compiled", "onnxruntime"} <= by_runtime.keys():
            print(f"\n{round_ratios(by_runtime['compiled'], by_runtime['onnxruntime'])}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
