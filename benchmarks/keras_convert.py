"""Keras graph converter benchmark: conversion time without TensorFlow, and inference speed
of the converted modules against Keras, in one run on this machine.

    python benchmarks/keras_convert.py [--repeats N]

Phase 1 (a child process that never imports TensorFlow) converts each model and times it
(best of N); phase 2 times batch-1 latency and batch-32 throughput of both sides in
interleaved rounds (median of N, N/2 at batch 32). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

MODELS = ["MobileNetV2", "EfficientNetB0", "ResNet50"]
SIZE = 224


def _convert_times(paths: dict[str, Path], repeats: int) -> dict[str, float]:
    """Best-of-N conversion seconds per model, measured in a process without TensorFlow."""
    code = f"""
import json, sys, time
from tf2torch.conversion.graph import convert_graph
from tf2torch.sources.keras.reader import read_keras
paths = {json.dumps({k: str(v) for k, v in paths.items()})}
times = {{}}
for name, path in paths.items():
    best = float("inf")
    for _ in range({repeats}):
        start = time.perf_counter()
        convert_graph(read_keras(path))
        best = min(best, time.perf_counter() - start)
    times[name] = best
assert "tensorflow" not in sys.modules, "conversion imported TensorFlow"
print(json.dumps(times))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _interleaved_medians(fns: dict[str, object], repeats: int) -> dict[str, float]:
    """Median seconds per call of each function, timed in interleaved rounds.

    On a shared 2-core VM the speed drifts by ±20% over a minute; timing the contenders in
    turn within each round gives each the same drift, where timing them one after another
    would hand the win to whichever ran in a quiet spell.
    """
    for fn in fns.values():
        fn()  # warm-up (graph tracing, allocator)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def _speeds(path: Path, repeats: int) -> dict[str, float]:
    import keras
    import tensorflow as tf

    from tf2torch.conversion.graph import convert_graph
    from tf2torch.packages.inference import configure_allocator, inference_form
    from tf2torch.sources.keras.reader import read_keras

    configure_allocator()
    # one compile cache per model: dynamo caps recompiles per code object (8), and every
    # model and batch size is one, so models compiled later would silently run eagerly
    torch._dynamo.reset()
    net = convert_graph(read_keras(path)).net
    fast = inference_form(net, (SIZE, SIZE, 3), input_layout="nhwc")
    compiled = inference_form(net, (SIZE, SIZE, 3), input_layout="nhwc", compile=True)
    model = keras.models.load_model(path, compile=False)
    # Keras as people deploy it: a traced tf.function, not an eager call per batch
    keras_fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    results = {}
    for batch in (1, 32):
        x = np.random.default_rng(0).uniform(0, 255, (batch, SIZE, SIZE, 3)).astype(np.float32)
        xt = torch.from_numpy(x)

        def torch_call(module: torch.nn.Module, xt: torch.Tensor = xt):
            def call() -> None:
                with torch.inference_mode():
                    module(xt)
            return call

        medians = _interleaved_medians({
            "torch": torch_call(net), "fast": torch_call(fast), "compiled": torch_call(compiled),
            "keras": lambda x=x: keras_fn(tf.constant(x)).numpy(),
        }, repeats if batch == 1 else max(3, repeats // 2))
        results.update({f"{name}_{batch}": t for name, t in medians.items()})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory() as folder:
        paths = {name: Path(folder) / f"{name}.keras" for name in MODELS}
        _save_models(paths)
        convert = _convert_times(paths, args.repeats)
        rows = ["| Model | Convert (s) | Keras b1 (ms) | Torch b1 (ms) | fast b1 (ms) "
                "| compiled b1 (ms) | Keras b32 (img/s) | Torch b32 (img/s) | fast b32 (img/s) "
                "| compiled b32 (img/s) |", "|---|---|---|---|---|---|---|---|---|---|"]
        for name, path in paths.items():
            s = _speeds(path, args.repeats)
            rows.append(
                f"| {name} | {convert[name]:.2f} | {1e3 * s['keras_1']:.1f} | "
                f"{1e3 * s['torch_1']:.1f} | {1e3 * s['fast_1']:.1f} | "
                f"{1e3 * s['compiled_1']:.1f} | {32 / s['keras_32']:.0f} | "
                f"{32 / s['torch_32']:.0f} | {32 / s['fast_32']:.0f} | {32 / s['compiled_32']:.0f} |"
            )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, input {SIZE}×{SIZE}")
    print("\n".join(rows))


def _save_models(paths: dict[str, Path]) -> None:
    """Save the benchmark models in a child process, so this one imports TF only later."""
    code = f"""
import torch, keras
paths = {json.dumps({k: str(v) for k, v in paths.items()})}
for name, path in paths.items():
    keras.utils.set_random_seed(0)
    getattr(keras.applications, name)(weights=None).save(path)
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


if __name__ == "__main__":
    main()
