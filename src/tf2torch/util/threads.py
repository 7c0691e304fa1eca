"""How many threads a forward pass uses, and how idle OpenMP threads wait.

One rule for the command line, the Python API (`load(..., inference=True)`) and the web app:

1. `threads=N` (an argument) or `TF2TORCH_THREADS=N` (the environment) wins, in that order.
   `tf2torch compile` runs at that count too (`fixed_threads`), so that the weights oneDNN
   packs into the program are packed for it (`packages/packing.py`).
2. Otherwise the thread count is the CPUs this process may use — its affinity mask, capped by
   a cgroup CPU quota — less the CPUs other processes kept busy since the last look (the
   machine's busy time from `/proc/stat` on those CPUs, minus this process's own CPU time),
   divided among the forward passes this process runs at once (`share`), and at least 1.
   It is looked at again between forward passes, at most once a second, so a neighbour that
   starts or stops is followed within about a second; after a look over more than two
   seconds (the process was idle), again 50 ms later. Where `/proc/stat` is not there
   (macOS, Windows) the usable CPUs count.
3. Where rule 2 leaves one thread though more CPUs are usable (others keep them busy), and
   the forward is a compiled program whose convolutions are tf2torch's own oneDNN op
   (`bands=True`), single images run in the shared mode (`native/onednn_helpers.cpp`): the
   one thread runs the program, each layer cut into bands of rows, and a helper thread kept
   to each usable CPU but the one other processes left most free (the caller's: each of
   this process's threads' time is taken off the busy time of the CPU it last ran on) takes
   bands as it gets time there. A helper that is descheduled holds nothing up: its band is
   taken back. `TF2TORCH_BANDS=0` turns this off; `TF2TORCH_BANDS=N` cuts N bands per
   thread (default 1, each half the rows left).
4. Idle OpenMP threads spin for a bounded time and then sleep (`GOMP_SPINCOUNT`, see
   `SPIN_COUNT`) instead of libgomp's default of milliseconds: a thread spinning at a barrier
   holds a core its own partner may be waiting for. libgomp reads this once, when torch is
   loaded, so `prepare_openmp_environment` sets it only where torch is not imported yet and
   the user set neither `OMP_WAIT_POLICY` nor `GOMP_SPINCOUNT`.

Why (BENCHMARKS.md, "Steady under load"): oneDNN and Inductor's kernels split each layer
statically between the threads and wait for the slowest. With one core taken by another
process, the thread sharing that core gets half of it, and every layer waits for it; one
thread on the free core is faster than two on one and a half, and a helper that takes work
only while it runs makes use of the half core as well.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tf2torch.errors import UsageError

ENV_THREADS = "TF2TORCH_THREADS"
ENV_BANDS = "TF2TORCH_BANDS"
DEFAULT_BANDS = 1  # bands per thread: each band half the rows left (BENCHMARKS.md)
# libgomp spins this many pause-loops before sleeping (its default is 300000, milliseconds);
# ~10000 covers the gap between one layer and the next, and no more (BENCHMARKS.md).
SPIN_COUNT = 10_000
RECHECK_S = 1.0     # how often the free CPUs are looked at again, at most
MIN_WINDOW_S = 0.05  # the shortest window a first look may be based on
_USER_WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
_PROC_STAT = Path("/proc/stat")
_TASKS = Path("/proc/self/task")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def prepare_openmp_environment() -> bool:
    """Bound OpenMP's spinning (rule 3) if torch is not loaded yet; True when it was set."""
    if "torch" in sys.modules or any(k in os.environ for k in _USER_WAIT_SETTINGS):
        return False
    os.environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
    return True


def requested_threads(threads: int | None = None) -> int | None:
    """The user's own choice (rule 1): the argument, else `TF2TORCH_THREADS`, else None."""
    if threads is not None:
        if threads < 1:
            raise UsageError(f"threads must be a positive number, not {threads}")
        return threads
    value = os.environ.get(ENV_THREADS, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise UsageError(f"{ENV_THREADS}={value!r}: give a positive number of threads")
    return int(value)


@contextmanager
def fixed_threads(threads: int | None = None) -> Iterator[int]:
    """torch's thread count set to the user's own choice (rule 1), if there is one, for the
    block; yields the count in force. A compile, say, packs weights for the count it will
    run at (`packages/packing.py`)."""
    import torch

    own = torch.get_num_threads()
    chosen = requested_threads(threads)
    if chosen is not None:
        torch.set_num_threads(chosen)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(own)


def allowed_cpus() -> list[int]:
    """The CPUs the scheduler may run this process on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return list(range(os.cpu_count() or 1))


def cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs' worth of time a cgroup quota allows (v2 `cpu.max`, v1 `cfs_quota_us`), or None."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class CpuSample:
    """Wall time, the busy CPU-seconds of the watched CPUs, and this process's CPU-seconds;
    for the shared mode's placement also each watched CPU's busy seconds and each of this
    process's threads' CPU-seconds and last CPU (tid → (seconds, cpu))."""

    wall: float
    busy: float | None
    own: float
    per_cpu: dict[int, float] | None = None
    threads: dict[int, tuple[float, int]] | None = None


def take_sample(cpus: list[int], stat: Path = _PROC_STAT, *,
                tasks: Path | None = None) -> CpuSample:
    """`tasks`: also read each thread's time and CPU from this folder (/proc/self/task)."""
    wall, own = time.monotonic(), time.process_time()
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return CpuSample(wall, None, own)
    per_cpu = {}
    for line in lines:
        fields = line.split()
        if fields and fields[0].startswith("cpu") and fields[0][3:].isdigit() \
                and int(fields[0][3:]) in cpus:
            # user nice system idle iowait irq softirq steal: all but idle and iowait are taken
            values = [int(v) for v in fields[1:9]]
            per_cpu[int(fields[0][3:])] = (sum(values) - values[3] - values[4]) / _TICKS
    return CpuSample(wall, sum(per_cpu.values()), own, per_cpu,
                     _thread_times(tasks) if tasks is not None else None)


def _thread_times(tasks: Path) -> dict[int, tuple[float, int]] | None:
    """Each thread's CPU-seconds (user + system) and the CPU it last ran on, from
    `/proc/self/task/*/stat`; None where that is not readable."""
    found = {}
    try:
        for task in tasks.iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):  # a thread just ended
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                found[int(task.name)] = ((int(fields[11]) + int(fields[12])) / _TICKS,
                                         int(fields[36]))
    except OSError:
        return None
    return found


def others_per_cpu(before: CpuSample, after: CpuSample) -> dict[int, float] | None:
    """How busy other processes kept each CPU between two samples (CPUs' worth): its busy
    time less what this process's threads ran there, each thread's time put on the CPU it
    last ran on (a pinned helper's exactly; the caller's, which the scheduler moves, near
    enough over a second). None where that cannot be told, or where threads that ended
    between the samples ran more than a tenth of it: their CPU is not known."""
    span = after.wall - before.wall
    if (span <= 0 or before.per_cpu is None or after.per_cpu is None or before.threads is None
            or after.threads is None):
        return None
    ours = dict.fromkeys(after.per_cpu, 0.0)
    for tid, (seconds, cpu) in after.threads.items():
        if cpu in ours:
            ours[cpu] += seconds - before.threads.get(tid, (0.0, cpu))[0]
    if (after.own - before.own) - sum(ours.values()) > 0.1 * span:
        return None
    return {cpu: max(0.0, (after.per_cpu[cpu] - before.per_cpu.get(cpu, 0.0) - ours[cpu])
                     / span) for cpu in after.per_cpu}


def busy_elsewhere(before: CpuSample, after: CpuSample) -> float | None:
    """CPUs other processes kept busy between two samples (None where it cannot be told)."""
    span = after.wall - before.wall
    if before.busy is None or after.busy is None or span <= 0:
        return None
    others = (after.busy - before.busy) - (after.own - before.own)
    return max(0.0, others / span)


class ThreadGovernor:
    """Chooses torch's intra-op thread count by the rule above and sets it before a forward.

    `share` is how many forward passes this process runs at once (the web app's
    concurrency): each gets its part of the free CPUs. Call `apply()` on the thread that runs
    the forward, right before it; it costs a few microseconds, and a read of `/proc/stat`
    once a second.
    """

    def __init__(self, threads: int | None = None, share: int = 1, bands: bool = False) -> None:
        self.fixed = requested_threads(threads)
        self.bands = requested_bands() if bands and share == 1 else 0
        # the CPUs the shared mode keeps a helper on (rule 3); empty: off
        self.helpers: tuple[int, ...] = ()
        self.cpus = allowed_cpus()
        quota = cpu_quota()
        self.usable = max(1, min(len(self.cpus), math.floor(quota) if quota else len(self.cpus)))
        self.share = max(1, share)
        self._sample = take_sample(self.cpus, tasks=_TASKS if self.bands else None)
        self._choice: int | None = None
        self._long_window = False
        self.busy_elsewhere: float | None = None

    def choose(self) -> int:
        if self.fixed is not None:
            return self.fixed
        now = time.monotonic()
        # a look over a long idle spell averages a neighbour that just started away: the
        # next one comes after the shortest window instead (BENCHMARKS.md, fifteenth session)
        wait = MIN_WINDOW_S if self._long_window else RECHECK_S
        if self._choice is not None and now - self._sample.wall < wait:
            return self._choice
        if now - self._sample.wall < MIN_WINDOW_S:  # only on a first look right after start
            time.sleep(MIN_WINDOW_S - (now - self._sample.wall))
        previous, current = self._sample, take_sample(self.cpus,
                                                      tasks=_TASKS if self.bands else None)
        self._long_window = current.wall - previous.wall > 2 * RECHECK_S
        self.busy_elsewhere = busy_elsewhere(previous, current)
        self._sample = current
        free = self.usable - (self.busy_elsewhere or 0.0)
        self._choice = max(1, min(self.usable, int(free + 0.5)) // self.share)
        self.helpers = ()
        if self.bands and self.usable > 1 and self._choice == 1:  # rule 3
            self.helpers = self._helper_cpus(previous, current)
        return self._choice

    def _helper_cpus(self, before: CpuSample, after: CpuSample) -> tuple[int, ...]:
        """Rule 3's helpers: one on each usable CPU but the one other processes left most
        free, which is the caller's to run on. Where a thread's CPU cannot be read, every
        CPU but the one the caller is on now: the caller caught on the busy CPU at that
        moment put the helper on the free one (BENCHMARKS.md, seventeenth session)."""
        others = others_per_cpu(before, after)
        if others:
            free = min(others, key=lambda cpu: (others[cpu], cpu))
            ranked = sorted((c for c in self.cpus if c != free),
                            key=lambda cpu: -others.get(cpu, 0.0))
            return tuple(ranked[:self.usable - 1])
        here = current_cpu()
        return tuple(c for c in self.cpus if c != here)[:self.usable - 1]

    def apply(self) -> int:
        """Set the chosen count for this thread's forward passes; returns it."""
        import torch

        n = self.choose()
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
        return n

    def describe(self) -> dict:
        """What the rule saw and chose, for `--json` output and benchmark tables."""
        return {"threads": self._choice if self.fixed is None else self.fixed,
                "helpers_on_cpus": list(self.helpers), "bands_per_thread": self.bands,
                "source": "TF2TORCH_THREADS/argument" if self.fixed is not None else "free CPUs",
                "usable_cpus": self.usable, "busy_elsewhere": self.busy_elsewhere,
                "share": self.share, "wait": wait_policy()}


def requested_bands() -> int:
    """Bands per thread for the shared mode (rule 3): `TF2TORCH_BANDS`, else the default."""
    value = os.environ.get(ENV_BANDS, "").strip()
    if not value:
        return DEFAULT_BANDS
    if not value.isdigit() or int(value) > 64:
        raise UsageError(f"{ENV_BANDS}={value!r}: give 0 (off) to 64 bands per thread")
    return int(value)


def current_cpu() -> int | None:
    """The CPU the calling thread last ran on (Linux), else None."""
    try:
        return int(Path("/proc/thread-self/stat").read_text().rsplit(")", 1)[1].split()[36])
    except (OSError, ValueError, IndexError):
        return None


def wait_policy() -> str:
    """How this process's OpenMP threads wait, as set in its environment."""
    for key in _USER_WAIT_SETTINGS:
        if key in os.environ:
            return f"{key}={os.environ[key]}"
    return "libgomp default (spin ~300000 loops)"
