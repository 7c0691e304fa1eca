"""Conversion time and inference speed of converted TFLite models against the interpreter.

    python benchmarks/tflite_convert.py MODEL.tflite [MODEL.tflite ...]

For each file: seconds to read + convert, then the median of `--runs` single-image forward
passes of the PyTorch module (CPU, no grad) and of the TFLite interpreter (its default
XNNPACK delegate), on the same seeded input. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from tf2torch.conversion.graph import convert_graph
from tf2torch.packages.inference import inference_form
from tf2torch.references.tflite import tflite_runner
from tf2torch.sources.tflite.reader import read_tflite


def _median_seconds(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(path: Path, runs: int) -> str:
    start = time.perf_counter()
    source = read_tflite(path)
    conversion = convert_graph(source)
    convert_s = time.perf_counter() - start
    shape = tuple(64 if d is None else d for d in source.graph.inputs[0].shape)
    x = np.random.default_rng(0).uniform(-1, 1, (1, *shape)).astype(np.float32)
    tensor = torch.from_numpy(x)
    fast = inference_form(conversion.net, shape, input_layout="nhwc")

    def run_torch(net: torch.nn.Module = conversion.net) -> None:
        with torch.inference_mode():
            net(tensor)

    reference = tflite_runner(path)
    torch_ms = 1000 * _median_seconds(run_torch, runs)
    fast_ms = 1000 * _median_seconds(lambda: run_torch(fast), runs)
    tflite_ms = 1000 * _median_seconds(lambda: reference(x), runs)
    return (f"| {path.name} | {sum(source.graph.op_counts().values())} | {convert_s:.2f} s | "
            f"{torch_ms:.2f} ms | {fast_ms:.2f} ms | {tflite_ms:.2f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| model | ops | read + convert | torch forward | inference form | TFLite invoke |")
    print("| --- | --- | --- | --- | --- | --- |")
    for path in args.models:
        print(bench(path, args.runs), flush=True)


if __name__ == "__main__":
    main()
