"""A/B of compiled programs, one process per program and turn (how compiler changes are judged).

    .venv/bin/python benchmarks/ab_programs.py A.pt2 B.pt2 [...] --shape 224,224,3
        [--turns 4] [--runs 200] [--batch 1] [--threads 2]

Each program is an AOTInductor package as `tf2torch compile` writes it (a `compiled/*.pt2`
of a package, or a variant built by hand). Why a process each: loaded into one process
and timed interleaved, the library loaded first ran 4-20% slower than the ones loaded
after it, with identical code (BENCHMARKS.md, "Strided 1×1 convolutions as matmuls"), so a
same-process A/B favours whichever variant is loaded second. Here, turn after turn, each
program runs alone in a fresh process (the order rotating between turns): warm-up, then
`--runs` timed calls on one seeded input; the table gives each process's median, the median
over processes and the ratio to the first program, which is the baseline.

Loading a program runs its native code: give it only programs you built. Programs of the
`onednn-cached` plan call tf2torch's own op, which each worker registers where it loads.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
WARMUP_S = 1.0


def main() -> int:
    args = parse_args()
    if args.worker:
        print(json.dumps(worker(Path(args.programs[0]), args)), flush=True)
        return 0
    programs = [Path(p) for p in args.programs]
    for program in programs:
        if not program.is_file():
            raise SystemExit(f"{program}: no such program")
    medians: dict[Path, list[float]] = {p: [] for p in programs}
    for turn in range(args.turns):
        shift = turn % len(programs)
        for program in programs[shift:] + programs[:shift]:
            medians[program].append(run_alone(program, args))
            print(f"turn {turn + 1} {program.name}: {medians[program][-1]:.3f} ms",
                  file=sys.stderr, flush=True)
    print(render(medians, args))
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("programs", nargs="+", help="compiled .pt2 programs; the first is "
                        "the baseline")
    parser.add_argument("--shape", required=True,
                        help="one input's shape without the batch, e.g. 224,224,3")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--turns", type=int, default=4, help="processes per program")
    parser.add_argument("--runs", type=int, default=200, help="timed calls per process")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def run_alone(program: Path, args: argparse.Namespace) -> float:
    argv = [sys.executable, __file__, str(program), "--worker", "--shape", args.shape,
            "--batch", str(args.batch), "--runs", str(args.runs), "--threads",
            str(args.threads)]
    env = {**os.environ, "TF2TORCH_THREADS": str(args.threads), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(argv, capture_output=True, text=True, check=True, env=env, cwd=REPO)
    return json.loads(done.stdout.strip().splitlines()[-1])["median_ms"]


def worker(program: Path, args: argparse.Namespace) -> dict:
    import tf2torch  # noqa: F401, I001 - before torch: its OpenMP settings, as users get them
    import torch

    from tf2torch.packages.aoti import Library
    from tf2torch.packages.inference import configure_allocator
    from tf2torch.packages.native_ops import unavailable

    unavailable()  # registers tf2torch's own op where it can: `onednn-cached` programs call it

    torch.set_num_threads(args.threads)
    configure_allocator()
    library = Library(program)
    shape = (args.batch, *(int(n) for n in args.shape.split(",")))
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32))
    with torch.inference_mode():
        until = time.perf_counter() + WARMUP_S
        while time.perf_counter() < until:
            library(x)
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            library(x)
            times.append(time.perf_counter() - start)
    return {"median_ms": statistics.median(times) * 1e3}


def render(medians: dict[Path, list[float]], args: argparse.Namespace) -> str:
    baseline = statistics.median(next(iter(medians.values())))
    load = os.getloadavg()[0]
    lines = [f"batch {args.batch}, {args.threads} threads, {args.turns} processes per program "
             f"× {args.runs} calls; load average {load:.1f} at the end",
             "", "| program | per process (ms) | median (ms) | / first |", "|---|---|---:|---:|"]
    for program, values in medians.items():
        median = statistics.median(values)
        each = " / ".join(f"{v:.2f}" for v in values)
        lines.append(f"| {program.name} | {each} | {median:.3f} | {median / baseline:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
