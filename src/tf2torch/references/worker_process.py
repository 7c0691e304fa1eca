"""A runtime in a process of its own, spoken to in frames: its crash is an error here.

A model comes from the user, and the runtimes that run originals (TFLite's C++ kernels,
TensorFlow's) trust the file: a malformed one can end the process with a signal, an abort,
or an allocation that would take the machine's memory. Run in a `WorkerProcess`, that ends
the worker, and this process raises one `SourceError` naming the file and how the worker
ended. The messages are `util/frames.py`'s; the worker scripts answer with its `serve`.

Limits, read when a worker starts: a worker that does not answer in
`TF2TORCH_REFERENCE_TIMEOUT` seconds (default 600) is stopped, and so is one whose resident
memory passes `TF2TORCH_REFERENCE_MEMORY` (a size such as `12G`; default 80% of this
machine's memory), checked four times a second while it works.
"""

from __future__ import annotations

import atexit
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tf2torch.errors import MissingDependencyError, SourceError
from tf2torch.util.budgets import parse_size
from tf2torch.util.frames import Message, decode, encode

_POLL_S = 0.25  # how often a working worker's memory is looked at


def _timeout_s() -> float:
    return float(os.environ.get("TF2TORCH_REFERENCE_TIMEOUT", "600"))


def _memory_cap() -> int | None:
    raw = os.environ.get("TF2TORCH_REFERENCE_MEMORY", "").strip()
    if raw:
        return parse_size(raw, "TF2TORCH_REFERENCE_MEMORY")
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * 0.8)
    except (ValueError, OSError, AttributeError):
        return None


def _resident_bytes(pid: int) -> int | None:
    """The process's resident memory from /proc (Linux); None where that is not readable."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class WorkerProcess:
    """A started worker: `request` sends one message and returns the answer; its death
    (a signal, an exit, silence past the timeout, memory past the cap) is a `SourceError`
    saying so. `wait=False` returns at once: the worker imports its runtime meanwhile, and
    the first request (or `ready()`) waits for its hello."""

    def __init__(self, script: Path, runtime: str, *, wait: bool = True) -> None:
        self.runtime = runtime  # what runs there, for messages
        self.timeout_s, self.memory_cap = _timeout_s(), _memory_cap()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
        # -P: the script's folder (which holds references/tensorflow.py) stays off sys.path
        self._proc = subprocess.Popen([sys.executable, "-P", str(script)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr, env=env)
        self.alive = True
        self.dropped: list[int] = []  # objects gone here, to free there
        self.last: dict = {}  # the last answer's header
        self._hello: dict | None = None
        if wait:
            self.ready()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def ready(self, doing: str | None = None) -> dict:
        """The worker's first message, once its runtime is imported."""
        if self._hello is None:
            self._hello = self._receive(doing or f"starting {self.runtime}")[0]
        return self._hello

    def request(self, header: dict, arrays: list[np.ndarray] | tuple, doing: str) -> Message:
        self.send(header, arrays, doing)
        return self.answer(doing)

    def send(self, header: dict, arrays: list[np.ndarray] | tuple, doing: str) -> None:
        """Queue a request without waiting, not even for the hello: the worker reads it once
        its runtime is imported. Each `send` is followed by one `answer`, in order."""
        drop = self.dropped[:]
        del self.dropped[: len(drop)]
        try:
            self._proc.stdin.write(encode({**header, "drop": drop}, list(arrays)))
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._died(doing) from None

    def answer(self, doing: str) -> Message:
        """The answer to the oldest request sent and not yet answered."""
        self.ready(doing)
        return self._receive(doing)

    def _receive(self, doing: str) -> Message:
        message = decode(lambda size: self._read(size, doing))
        if message is None:
            raise self._died(doing)
        self.last = message[0]
        return message

    def _read(self, size: int, doing: str) -> bytes:
        data = b""
        deadline = time.monotonic() + self.timeout_s
        while len(data) < size:
            ready, _, _ = select.select([self._proc.stdout], [], [], _POLL_S)
            if not ready:
                self._check_limits(doing, deadline)
                continue
            chunk = os.read(self._proc.stdout.fileno(), size - len(data))
            if not chunk:
                raise self._died(doing)
            data += chunk
        return data

    def _check_limits(self, doing: str, deadline: float) -> None:
        if time.monotonic() > deadline:
            self.close()
            raise SourceError(f"{doing}: {self.runtime} did not answer in "
                              f"{self.timeout_s:.0f} s (TF2TORCH_REFERENCE_TIMEOUT); stopped it")
        resident = _resident_bytes(self._proc.pid)
        if self.memory_cap is not None and resident is not None and resident > self.memory_cap:
            self.close()
            raise SourceError(f"{doing}: {self.runtime} used {resident / 2**30:.1f} GiB, over "
                              f"the {self.memory_cap / 2**30:.1f} GiB allowed "
                              "(TF2TORCH_REFERENCE_MEMORY); stopped it")

    def _died(self, doing: str) -> SourceError:
        self.alive = False
        try:
            code = self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        self._stderr.seek(0)
        tail = [line for line in self._stderr.read().decode(errors="replace").splitlines()
                if line.strip()][-2:]
        if any("No module named 'tensorflow'" in line for line in tail):
            return MissingDependencyError(f"{self.runtime} needs TensorFlow: "
                                          "pip install 'tf2torch[tf]'")
        how = (f"crashed with {signal.Signals(-code).name}" if code < 0
               else f"stopped (exit {code})")
        detail = f" ({' | '.join(tail)})" if tail else ""
        return SourceError(f"{doing}: {self.runtime} {how}: the file is "
                           f"malformed in a way it does not check{detail}")

    def close(self) -> None:
        self.alive = False
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=10)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait()
        self._proc.stdout.close()  # Popen leaves its pipes to its user
        self._stderr.close()


class SharedWorker:
    """At most one live worker of a script per process, started on first use and shared
    (its runtime is imported once); after a crash, the next use starts a fresh one. Every
    shared worker is stopped at exit."""

    def __init__(self, script: Path, runtime: str) -> None:
        self.script, self.runtime = script, runtime
        self._live: WorkerProcess | None = None
        atexit.register(self.close)

    @property
    def current(self) -> WorkerProcess | None:
        return self._live

    def get(self) -> WorkerProcess:
        """The live worker, or a fresh one (whose first request waits for its import, so
        that a failure there names the file being run)."""
        if self._live is None or not self._live.alive:
            self.close()
            self._live = WorkerProcess(self.script, self.runtime, wait=False)
        return self._live

    def close(self) -> None:
        """Stop the worker; the next `get` starts a fresh one."""
        if self._live is not None:
            live, self._live = self._live, None
            live.close()
