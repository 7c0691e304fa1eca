"""Inference speed of one MobileNetV2-1.4/224 across runtimes, each in its own process.

    .venv/bin/python benchmarks/inference.py [--rounds 3] [--no-compile] [--cache DIR]
        [--runtimes compiled,onnxruntime]

Every runtime runs the same weights: the stand-in TF-slim release (built with TensorFlow
into the cache when absent), its tf2torch package with its compiled form (`tf2torch
compile`), and that package's ONNX export. Rounds interleave the runtimes so a busy machine
slows them alike; each figure is the median over rounds of each round's median, with the
spread (lowest-highest round median). All runtimes get 2 threads (TF2TORCH_THREADS=2 for
tf2torch's forms). "ready" is a fresh process's time from start (imports included) to the
first answer. Prints a markdown table. `--runtimes compiled,onnxruntime --rounds 10` runs
that pair alone, in turns, and adds their ratio round by round (as `keras_runtimes.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
THREADS = 2
MULTIPLIER, SIZE = 1.4, 224
RUNTIMES = {  # name → description in the table
    "tensorflow": "TensorFlow (Keras model in tf.function)",
    "eager": "PyTorch eager (converted net, `load(NAME).net`)",
    "form": "inference form, eager (`load(NAME, inference=True)` without a compiled form)",
    "compiled": "compiled form (`tf2torch compile NAME`, then `load(NAME, inference=True)`)",
    "onnxruntime": "ONNX export in onnxruntime",
}
COMPILE_TIMEOUT_S = 420


# --- the parent: prepare, run workers, print --------------------------------------------------

def main() -> int:
    args = parse_args()
    if args.worker:
        print(json.dumps(run_worker(args.worker, Path(args.cache), args.iters_1, args.iters_32,
                                    args.spawned_at)))
        return 0
    cache = Path(args.cache)
    prepare(cache)
    runtimes = args.runtimes.split(",") if args.runtimes else list(RUNTIMES)
    if unknown := set(runtimes) - set(RUNTIMES):
        raise SystemExit(f"--runtimes: {', '.join(sorted(unknown))}; give some of "
                         f"{', '.join(RUNTIMES)}")
    runtimes = [r for r in runtimes if not (args.no_compile and r == "compiled")]
    load_before = os.getloadavg()
    results = {r: [] for r in runtimes}
    for round_index in range(args.rounds):
        # with a chosen pair, the order turns each round, so neither always runs first
        shift = round_index % len(runtimes) if args.runtimes else 0
        for runtime in runtimes[shift:] + runtimes[:shift]:
            results[runtime].append(run_in_subprocess(runtime, cache, args))
            print(f"round {round_index + 1} {runtime}: {results[runtime][-1]}", file=sys.stderr)
    memory = {} if args.runtimes else predict_memory(cache)
    print(render(results, memory, load_before, os.getloadavg(), args.rounds))
    if {"compiled", "onnxruntime"} <= results.keys():
        print(f"\n{round_ratios(results['compiled'], results['onnxruntime'])}")
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters-1", type=int, default=30, help="timed batch-1 runs per process")
    parser.add_argument("--iters-32", type=int, default=6, help="timed batch-32 runs per process")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--runtimes", help="some of them, e.g. compiled,onnxruntime: many "
                        "rounds of the pair, their ratio round by round (no memory table)")
    parser.add_argument("--cache", default=str(REPO / ".cache" / "benchmarks"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--spawned-at", type=float, help=argparse.SUPPRESS)
    return parser.parse_args()


def paths(cache: Path) -> dict[str, Path]:
    name = f"mobilenet_v2_{MULTIPLIER:g}_{SIZE}"
    return {"release": cache / "release", "prefix": cache / "release" / name / f"{name}.ckpt",
            "tests_h5": cache / "release" / name / "tests.h5", "package": cache / "package",
            "onnx": cache / "model.onnx", "image": cache / "photo.jpg"}


def prepare(cache: Path) -> None:
    """Stand-in release, package, ONNX export and a photo; each made once (in a subprocess)."""
    p = paths(cache)
    if not (p["onnx"].exists() and p["package"].exists() and p["image"].exists()):
        _python(["-c", _PREPARE, str(cache)], timeout=1200)
    ensure_compiled(p["package"])


def ensure_compiled(package: Path) -> None:
    """Compile `package` where it has no compiled form keyed to this machine, torch and CPU
    vendor (new, or a cache made elsewhere): the timed process refuses to run without one.
    Compiled as a user would, without TF2TORCH_THREADS, so the plan sees every thread count
    the rule may pick (`single_image.py`)."""
    env = {k: v for k, v in os.environ.items() if k != "TF2TORCH_THREADS"}
    subprocess.run([sys.executable, "-c", _ENSURE_COMPILED, str(package)], check=True,
                   timeout=1800, env={**env, "PYTHONWARNINGS": "ignore"}, cwd=REPO)


_ENSURE_COMPILED = """
import sys
from pathlib import Path
from tf2torch.api import compile_package
from tf2torch.packages.compiled import this_machine
package = Path(sys.argv[1])
if not (package / "compiled" / f"{this_machine().key}.json").is_file():
    print("compiling", package, "for", this_machine().key, flush=True)
    compile_package(package)
"""


_PREPARE = f"""
import sys, shutil
from pathlib import Path
import torch  # before tensorflow
import numpy as np
from PIL import Image
sys.path.insert(0, {str(REPO / 'benchmarks')!r})
from inference import paths
p = paths(Path(sys.argv[1]))
if not p["tests_h5"].exists():
    from tf2torch.references.standin import make_standin_release
    make_standin_release(p["release"], {MULTIPLIER}, {SIZE}, tflite=False, pack=False)
from tf2torch.api import convert
from tf2torch.packages.package import load_package
from tf2torch.packages.export import export_onnx
if not p["package"].exists():
    convert(p["prefix"], p["package"])
print(export_onnx(load_package(p["package"]), p["onnx"]).summary())
rng = np.random.default_rng(0)
Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(p["image"])
"""


def run_in_subprocess(runtime: str, cache: Path, args: argparse.Namespace) -> dict | str:
    timeout = 600
    try:
        out = _python([__file__, "--worker", runtime, "--cache", str(cache),
                       "--iters-1", str(args.iters_1), "--iters-32", str(args.iters_32),
                       "--spawned-at", repr(time.time())], timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout} s"
    except subprocess.CalledProcessError as exc:
        return f"failed: {exc.stderr.strip().splitlines()[-1] if exc.stderr else exc}"
    return json.loads(out.strip().splitlines()[-1])


def _python(argv: list[str], timeout: float) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONWARNINGS": "ignore", "TF2TORCH_THREADS": str(THREADS)}
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True, check=True,
                          timeout=timeout, env=env, cwd=REPO)
    return done.stdout


# --- peak memory of predicting one image -------------------------------------------------------

def predict_memory(cache: Path) -> dict[str, float | str]:
    """Peak RSS (MiB) of a fresh process classifying one photo, per way of running it."""
    p = paths(cache)
    api = ("import tf2torch, torch, sys; "
           "m = tf2torch.load(sys.argv[1], inference=len(sys.argv) > 3); ")
    keras_file = next(p["prefix"].parent.glob("*.keras"))
    cli = str(Path(sys.executable).parent / "tf2torch")
    commands = {
        "TensorFlow: the release's .keras in Keras, one photo (slim preprocessing)": [
            "-c", "import sys, numpy as np, keras; from PIL import Image; "
            "m = keras.models.load_model(sys.argv[1]); "
            "x = np.asarray(Image.open(sys.argv[2]).convert('RGB').resize((224, 224)), "
            "np.float32)[None] / 127.5 - 1; print(m.predict(x, verbose=0).argmax())",
            str(keras_file), str(p["image"])],
        "tf2torch, eager module (API)": ["-c", api + "print(m.classify([sys.argv[2]])[0][0])",
                                         str(p["package"]), str(p["image"])],
        "tf2torch, compiled form (API, `load(NAME, inference=True)`)": [
            "-c", api + "print(m.classify([sys.argv[2]])[0][0])", str(p["package"]),
            str(p["image"]), "fast"],
        "`tf2torch predict NAME photo.jpg` (CLI)": [cli, "predict", str(p["package"]),
                                                   str(p["image"])],
        "`tf2torch predict NAME photo.jpg --backend torch-fast` (CLI)": [
            cli, "predict", str(p["package"]), str(p["image"]), "--backend", "torch-fast"],
        "onnxruntime (API)": [
            "-c", "import tf2torch, sys; from tf2torch.packages.export import with_onnxruntime; "
            "m = tf2torch.load(sys.argv[1]); m, _ = with_onnxruntime(m, sys.argv[3], threads=2); "
            "print(m.classify([sys.argv[2]])[0][0])",
            str(p["package"]), str(p["image"]), str(p["onnx"])],
    }
    return {label: _peak_rss_mib(argv) for label, argv in commands.items()}


def _peak_rss_mib(argv: list[str]) -> float | str:
    """`wait4` gives this one child's rusage (RUSAGE_CHILDREN would mix all children)."""
    command = argv if not argv[0].startswith("-") else [sys.executable, *argv]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        return f"failed: {proc.stderr.read().decode().strip().splitlines()[-1]}"
    return usage.ru_maxrss / 1024  # kB on Linux


# --- workers: one runtime each ------------------------------------------------------------------

def run_worker(runtime: str, cache: Path, iters_1: int, iters_32: int,
               spawned_at: float) -> dict:
    forward = FACTORIES[runtime](paths(cache))
    rng = np.random.default_rng(0)
    one = rng.uniform(-1, 1, (1, 3, SIZE, SIZE)).astype(np.float32)
    many = rng.uniform(-1, 1, (32, 3, SIZE, SIZE)).astype(np.float32)
    forward(one)
    ready_s = time.time() - spawned_at  # process start (imports included) to a first answer
    batch_1 = _median_seconds(forward, one, iters_1, warmup=5)
    batch_32 = _median_seconds(forward, many, iters_32, warmup=2)
    return {"b1_ms": round(batch_1 * 1e3, 2), "b32_ips": round(32 / batch_32, 1),
            "setup_s": round(ready_s, 2)}


def _median_seconds(forward: Callable[[np.ndarray], object], batch: np.ndarray, iters: int,
                    warmup: int) -> float:
    for _ in range(warmup):
        forward(batch)
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        forward(batch)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def tensorflow_forward(p: dict[str, Path]) -> Callable[[np.ndarray], object]:
    import h5py
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from tf2torch.references.standin import keras_mobilenet_v2

    model = keras_mobilenet_v2(MULTIPLIER, SIZE, seed=0)  # the weights the release holds
    call = tf.function(lambda x: model(x, training=False))
    with h5py.File(p["tests_h5"]) as f:  # prove it: the release's own stored outputs
        assert np.abs(call(f["RandomInput"][()]).numpy() - f["LogitsForRandom"][()]).max() < 1e-4
    return lambda nchw: call(nchw.transpose(0, 2, 3, 1)).numpy()


def torch_forward(runtime: str, p: dict[str, Path], sample_shape: tuple = (3, SIZE, SIZE),
                  layout: str = "nchw") -> Callable[[np.ndarray], object]:
    import tf2torch  # noqa: I001 - before torch: it bounds OpenMP spinning (util/threads)
    import torch

    if runtime == "eager":
        torch.set_num_threads(THREADS)
        net = tf2torch.load(p["package"]).net
    elif runtime == "form":  # what load(..., inference=True) runs without a compiled form
        from tf2torch.packages.inference import configure_allocator, inference_form
        from tf2torch.packages.package import load_package

        configure_allocator()
        net = inference_form(load_package(p["package"]).net, sample_shape, input_layout=layout)
    else:
        model = tf2torch.load(p["package"], inference=True)
        assert model.form.startswith("compiled"), model.form
        net = model.net

    def forward(batch: np.ndarray) -> object:
        with torch.inference_mode():
            return net(torch.from_numpy(batch))

    return forward


def onnxruntime_forward(p: dict[str, Path]) -> Callable[[np.ndarray], object]:
    from tf2torch.packages.export import onnx_runner

    return onnx_runner(p["onnx"], threads=THREADS)


FACTORIES = {"tensorflow": tensorflow_forward, "onnxruntime": onnxruntime_forward,
             **{r: partial(torch_forward, r) for r in ("eager", "form", "compiled")}}


# --- the table -----------------------------------------------------------------------------------

def render(results: dict[str, list], memory: dict, load_before: tuple, load_after: tuple,
           rounds: int) -> str:
    lines = [
        f"### MobileNetV2-{MULTIPLIER:g}/{SIZE} inference, {datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"Machine: {_cpu_model()}, {THREADS} threads per runtime ({os.cpu_count()} CPUs), "
        f"{platform.system()} {platform.release()}; load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after. {rounds} rounds, each runtime in its own process.",
        "",
        "| runtime | batch 1 latency (ms): median (spread) | batch 32 (img/s): median (spread) "
        "| ready (s) |",
        "|---|---:|---:|---:|",
    ]
    for runtime, runs in results.items():
        lines.append(_row(RUNTIMES[runtime], runs))
    if memory:
        lines += ["", "| one-image predict, fresh process | peak RSS (MiB) |", "|---|---:|"]
    for label, value in memory.items():
        lines.append(f"| {label} | {value if isinstance(value, str) else f'{value:.0f}'} |")
    return "\n".join(lines)


def round_ratios(ours: list[dict], theirs: list[dict]) -> str:
    """The compiled form against onnxruntime round by round: the two run one after the
    other, so a pair shares the machine's phase, where medians over rounds may not (its
    speed moved between two levels within minutes, BENCHMARKS.md)."""
    pairs = [(a, b) for a, b in zip(ours, theirs, strict=True)
             if isinstance(a, dict) and isinstance(b, dict)]
    b1 = [a["b1_ms"] / b["b1_ms"] for a, b in pairs]
    b32 = [a["b32_ips"] / b["b32_ips"] for a, b in pairs]
    return (f"Compiled form against onnxruntime, round by round: batch 1 time {_listed(b1)} "
            f"(below 1: faster; {_summary(b1, ahead=lambda r: r < 1)}); batch 32 throughput "
            f"{_listed(b32)} (above 1: faster; {_summary(b32, ahead=lambda r: r > 1)}).")


def _listed(ratios: list[float]) -> str:
    return ", ".join(f"{r:.2f}" for r in ratios)


def _summary(ratios: list[float], ahead: Callable[[float], bool]) -> str:
    """Median and quartiles of the round ratios, and in how many rounds tf2torch was ahead."""
    if len(ratios) < 4:
        return f"ahead in {sum(map(ahead, ratios))} of {len(ratios)}"
    q1, median, q3 = statistics.quantiles(ratios, n=4)
    return (f"median {median:.2f}, quartiles {q1:.2f}-{q3:.2f}, ahead in "
            f"{sum(map(ahead, ratios))} of {len(ratios)}")


def _row(label: str, runs: list) -> str:
    good = [r for r in runs if isinstance(r, dict)]
    if not good:
        return f"| {label} | {runs[-1]} | | |"
    b1 = [r["b1_ms"] for r in good]
    b32 = [r["b32_ips"] for r in good]
    setup = statistics.median(r["setup_s"] for r in good)
    return (f"| {label} | {statistics.median(b1):.1f} ({min(b1):.1f}-{max(b1):.1f}) | "
            f"{statistics.median(b32):.1f} ({min(b32):.1f}-{max(b32):.1f}) | {setup:.1f} |")


def _cpu_model() -> str:
    if shutil.which("lscpu"):
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
