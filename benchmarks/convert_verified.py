"""`tf2torch convert RELEASE.tgz` with its verification, and `convert(..., verify=False)`
in process (issue 13, point 3).

    .venv/bin/python benchmarks/convert_verified.py RELEASE.tgz [--rounds 3] [--before PYTHON]

Per round, interleaved: (a) the command a README reader runs, `tf2torch convert
RELEASE.tgz` (verified against the release's frozen graph), in a fresh process: wall time
from start to exit, this process's peak memory and its TensorFlow worker's (each as the
process itself reports it in `--profile`), the most both held at once (their resident memory
summed, sampled every 5 ms), and the phases of `--profile`; (b) with
`--before PYTHON`, the same command run by another checkout's Python (the code before this
change) for comparison; (c) `tf2torch.convert(CKPT, OUT,
verify=False)` in a fresh process after `import tf2torch, torch`: its first call and a
second one. Medians with the spread; prints Markdown. Python caches bytecode in these runs,
as on a user's machine, whatever PYTHONDONTWRITEBYTECODE says here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from web_load import rss_mib  # a sibling script: benchmarks/ is on the path

# Each call's wall time, and the part of it Python's cyclic collector took: the first full
# collection after `import torch` walks all of torch's objects (0.15 s here), and falls into
# whatever runs first.
IN_PROCESS = """
import gc, json, sys, time, shutil
import tf2torch, torch
from tf2torch.api import convert
times, totals, started = [], [], [0.0]
def clock(phase, info):
    if phase == "start":
        started[0] = time.perf_counter()
    elif totals:
        totals[-1] += time.perf_counter() - started[0]
gc.callbacks.append(clock)
for i in range(2):
    shutil.rmtree(sys.argv[2], ignore_errors=True)
    totals.append(0.0)
    start = time.perf_counter()
    convert(sys.argv[1], sys.argv[2], verify=False)
    times.append(time.perf_counter() - start)
print(json.dumps(times + totals))
"""


def _tree(pid: int) -> list[tuple[int, str]]:
    """`pid` and its descendants, with their command lines."""
    found, i = [pid], 0
    while i < len(found):
        try:
            for task in os.listdir(f"/proc/{found[i]}/task"):
                with open(f"/proc/{found[i]}/task/{task}/children") as f:
                    found += [int(c) for c in f.read().split()]
        except OSError:
            pass
        i += 1
    lines = []
    for p in found:
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                lines.append((p, f.read().decode(errors="replace")))
        except OSError:
            pass
    return lines


def sample_tree_peak(pid: int, done: threading.Event, out: dict) -> None:
    """The largest sum of resident memory over `pid`'s process tree, sampled every 5 ms: the
    memory the command holds at once. A child that is still its parent's fork (the same
    command line, before its exec) shares its parent's pages and is not counted twice."""
    peak = 0.0
    while not done.is_set():
        tree = _tree(pid)
        seen = set()
        total = 0.0
        for p, line in tree:
            if line not in seen:
                seen.add(line)
                with contextlib.suppress(OSError):  # it ended since the listing
                    total += np.nan_to_num(rss_mib(p))  # a zombie has no VmRSS: nothing held
        peak = max(peak, total)
        time.sleep(0.005)
    out["tree_peak_mib"] = peak

# tf2torch's bytecode written first, as `pip install` leaves an installed package
COMPILE = ("import compileall, os, tf2torch; "
           "compileall.compile_dir(os.path.dirname(tf2torch.__file__), quiet=1)")


def user_environ() -> dict[str, str]:
    """This environment as a user's machine has it: Python caches bytecode. (This sandbox
    sets PYTHONDONTWRITEBYTECODE, which made every fresh process compile tf2torch's modules
    from source: 0.2 s of a `convert --no-verify` call.)"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONWARNINGS": "ignore"}


def run_cli(python: str, archive: Path, home: Path) -> dict:
    """Wall time and peak RSS of one `tf2torch convert` process (and its profile, if any)."""
    env = {**user_environ(), "TF2TORCH_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    proc = subprocess.Popen([str(Path(python).parent / "tf2torch"), "convert", str(archive),
                             "--overwrite", "--json", "--profile"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, text=True)
    done, sampled = threading.Event(), {}
    sampler = threading.Thread(target=sample_tree_peak, args=(proc.pid, done, sampled))
    sampler.start()
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    assert os.waitstatus_to_exitcode(status) == 0, out[-500:]
    report = json.loads(out[out.index("{"):])
    assert report["verification"]["passed"]
    # wait4's rusage covers the child's waited-for descendants too (its TensorFlow worker):
    # the converting process's own peak is the one its profile reports (RUSAGE_SELF)
    profile = report.get("profile") or {}
    return {"wall_s": wall, "peak_mib": profile.get("peak_rss_mib", usage.ru_maxrss / 1024),
            "together_mib": sampled["tree_peak_mib"], "profile": profile}


def run_in_process(prefix: Path, out: Path) -> list[float]:
    done = subprocess.run([sys.executable, "-c", IN_PROCESS, str(prefix), str(out)],
                          capture_output=True, text=True, check=True,
                          env=user_environ())
    return json.loads(done.stdout.strip().splitlines()[-1])


def spread(values: list[float], unit: str, digits: int = 2) -> str:
    return (f"{statistics.median(values):.{digits}f} {unit} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archive", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", help="another checkout's python, for the code before")
    args = parser.parse_args()
    for python in filter(None, (sys.executable, args.before)):
        subprocess.run([python, "-c", COMPILE], check=True, env=user_environ())
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        with tarfile.open(args.archive) as tar:
            tar.extractall(scratch / "release", filter="data")
        prefix = next((scratch / "release").rglob("*.ckpt.index")).with_suffix("")
        load_before = os.getloadavg()[0]
        now, before, in_process = [], [], []
        for _ in range(args.rounds):
            now.append(run_cli(sys.executable, args.archive, scratch / "home"))
            if args.before:
                before.append(run_cli(args.before, args.archive, scratch / "home-before"))
            in_process.append(run_in_process(prefix, scratch / "pkg"))
            print(now[-1]["wall_s"], before[-1]["wall_s"] if before else "", in_process[-1],
                  file=sys.stderr)
    print(f"### convert, {time.strftime('%Y-%m-%d %H:%M')}, load average {load_before:.1f} "
          f"before, {os.getloadavg()[0]:.1f} after; {args.rounds} rounds\n")
    print("| route | wall | peak memory (each process's own) | together (sampled) |\n"
          "|---|---:|---:|---:|")
    for label, runs in ((f"`tf2torch convert {args.archive.name}` (verified), fresh process",
                         now), ("the same, before this change", before)):
        if runs:
            worker = [r["profile"].get("reference_peak_rss_mib") or 0 for r in runs]
            print(f"| {label} | {spread([r['wall_s'] for r in runs], 's', 1)} | "
                  f"{spread([r['peak_mib'] for r in runs], 'MiB', 0)} + TensorFlow worker "
                  f"{spread(worker, 'MiB', 0)} | "
                  f"{spread([r['together_mib'] for r in runs], 'MiB', 0)} |")
    for index, label in enumerate(("`convert(ckpt, out, verify=False)`, first call in a "
                                   "fresh process", "the same, second call")):
        print(f"| {label} | {spread([t[index] for t in in_process], 's')}, of which "
              f"Python's collector {spread([t[index + 2] for t in in_process], 's')} | |")
    print("\nphases of the verified route (median s):\n")
    phases = {k for r in now for k in r["profile"]["phases_s"]}
    for phase in sorted(phases, key=list(now[0]["profile"]["phases_s"]).index):
        values = [r["profile"]["phases_s"].get(phase, 0.0) for r in now]
        print(f"- {phase}: {statistics.median(values):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
