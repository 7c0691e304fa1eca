"""Converted TFLite models against the interpreter (XNNPACK), at batch 1 and batch 32.

    .venv/bin/python benchmarks/tflite_convert.py MODEL.tflite [...] [--runs 20] [--threads 2]

For each file: seconds to read + convert; the package is then written (verified against the
TFLite interpreter, its outputs kept) and compiled (`tf2torch compile`, timed). Three
contenders on the same seeded input, timed in turn within each round (interleaved): the
eager inference form, the compiled form (`load(NAME, inference=True)`), and TensorFlow's
TFLite interpreter with its default XNNPACK delegate. Batch 32 for the interpreter is 32
invokes of its batch-1 model (what the file allows); for torch one forward of 32. Medians;
prints a Markdown table.
"""
# ruff: noqa: I001 - tf2torch is imported before torch on purpose

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import tf2torch  # before torch: bounds OpenMP's spinning (util/threads)
import torch
from tf2torch.api import compile_package
from tf2torch.conversion.graph import convert_graph
from tf2torch.packages.inference import configure_allocator, inference_form
from tf2torch.references.tflite import tflite_runner
from tf2torch.sources.tflite.reader import read_tflite


def bench(path: Path, runs: int, workdir: Path) -> str:
    start = time.perf_counter()
    source = read_tflite(path)
    conversion = convert_graph(source)
    convert_s = time.perf_counter() - start
    package = workdir / path.stem
    tf2torch.convert(path, package, overwrite=True)
    start = time.perf_counter()
    compile_package(package)
    compile_s = time.perf_counter() - start
    model = tf2torch.load(package, inference=True)
    assert model.form.startswith("compiled"), model.form
    shape = tuple(64 if d is None else d for d in source.graph.inputs[0].shape)
    eager = inference_form(conversion.net, shape, input_layout="nhwc")
    rng = np.random.default_rng(0)
    x1 = rng.uniform(-1, 1, (1, *shape)).astype(np.float32)
    x32 = rng.uniform(-1, 1, (32, *shape)).astype(np.float32)
    interpreter = tflite_runner(path)

    def torch_run(net: torch.nn.Module, x: np.ndarray):
        def run() -> None:
            with torch.inference_mode():
                net(torch.from_numpy(x))
        return run

    contenders = {
        "eager": (torch_run(eager, x1), torch_run(eager, x32)),
        "compiled": (torch_run(model.net, x1), torch_run(model.net, x32)),
        "xnnpack": (lambda: interpreter(x1), lambda: interpreter(x32)),
    }
    times: dict[tuple[str, int], list[float]] = {}
    for one, many in contenders.values():
        one(), many()  # warm-up
    for round_index in range(runs):
        for name, (one, many) in contenders.items():
            for batch, fn in ((1, one), (32, many)):
                if batch == 32 and round_index % 4:
                    continue
                begin = time.perf_counter()
                fn()
                times.setdefault((name, batch), []).append(time.perf_counter() - begin)
    ms = {k: 1000 * statistics.median(v) for k, v in times.items()}
    return (f"| {path.name} | {sum(source.graph.op_counts().values())} | {convert_s:.2f} s | "
            f"{compile_s:.0f} s | {ms['eager', 1]:.2f} | {ms['compiled', 1]:.2f} | "
            f"{ms['xnnpack', 1]:.2f} | {ms['compiled', 1] / ms['xnnpack', 1]:.2f}× | "
            f"{32000 / ms['eager', 32]:.0f} | {32000 / ms['compiled', 32]:.0f} | "
            f"{32000 / ms['xnnpack', 32]:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2, help="threads for both sides")
    args = parser.parse_args()
    os.environ["TF2TORCH_THREADS"] = str(args.threads)
    configure_allocator()
    print(f"torch {torch.__version__}, {args.threads} threads (TFLite: {os.cpu_count()}); "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| model | ops | read + convert | compile | eager b1 (ms) | compiled b1 (ms) | "
          "XNNPACK b1 (ms) | compiled / XNNPACK | eager b32 (img/s) | compiled b32 (img/s) | "
          "XNNPACK b32 (img/s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as workdir:
        for path in args.models:
            print(bench(path, args.runs, Path(workdir)), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
