"""Fuzzing helpers: mutations of valid seed files, and a capped child process that opens them.

`Child` runs `fuzz_worker.py` under an address-space cap (`resource.setrlimit`) and gives
each input `TIMEOUT` seconds; a reply that is not a `Tf2TorchError` (or success), a child
killed by a signal or by the cap, or one that stays silent is a finding. The child is
restarted after a finding, so one bad input does not hide the next.

Mutations are Hypothesis strategies: bytes (flips, truncation, interesting integers written
over, insertions) and JSON (a value somewhere in a document replaced by one of the wrong
type or an absurd size).
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

WORKER = Path(__file__).with_name("fuzz_worker.py")
TIMEOUT = float(os.environ.get("TF2TORCH_FUZZ_TIMEOUT", "30"))
MEMORY_CAP = int(os.environ.get("TF2TORCH_FUZZ_MEMORY_GIB", "6")) << 30
INTERESTING = (0, 1, -1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
               10**5, 10**9, 2**40, 2**63 - 1)


class Child:
    """The capped worker; `ask(kind, path)` → its reply, or a finding of its death."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.outcomes: Counter[str] = Counter()

    def _start(self) -> subprocess.Popen:
        def cap() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.pathsep.join(
            p for p in sys.path if p)}
        return subprocess.Popen([sys.executable, str(WORKER)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                env=env, preexec_fn=cap)

    def ask(self, kind: str, path: Path) -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        self.proc.stdin.write(json.dumps({"kind": kind, "path": str(path)}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT)
        line = self.proc.stdout.readline() if ready else ""
        reply = json.loads(line) if line else self._death(ready)
        self.outcomes[reply["outcome"]] += 1
        if reply["outcome"] == "MemoryError":  # the cap: a heap that large is a finding
            self.close()
        return reply

    def _death(self, answered: list) -> dict[str, Any]:
        if not answered:
            self.close()
            return {"outcome": "hang", "tf2torch": False,
                    "message": f"no answer in {TIMEOUT:.0f} s"}
        code = self.proc.wait()
        self.proc = None
        what = signal.Signals(-code).name if code < 0 else f"exit {code}"
        return {"outcome": f"died ({what})", "tf2torch": False, "message": what}

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


# ---- byte mutations -------------------------------------------------------------------------

_flip = st.tuples(st.just("flip"), st.floats(0, 1), st.integers(1, 255))
_truncate = st.tuples(st.just("truncate"), st.floats(0, 1), st.just(0))
_integer = st.tuples(st.just("int"), st.floats(0, 1), st.sampled_from(INTERESTING))
_insert = st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=16))
byte_mutations = st.lists(st.one_of(_flip, _flip, _integer, _truncate, _insert),
                          min_size=1, max_size=4)


def mutate_bytes(data: bytes, mutations: list[tuple]) -> bytes:
    buf = bytearray(data)
    for kind, where, value in mutations:
        at = min(int(where * len(buf)), max(len(buf) - 1, 0))
        if kind == "flip" and buf:
            buf[at] ^= value
        elif kind == "truncate":
            del buf[at:]
        elif kind == "int":
            width = 8 if value >= 2**32 else 4
            buf[at:at + width] = (value % 2 ** (8 * width)).to_bytes(width, "little")
        elif kind == "insert":
            buf[at:at] = value
    return bytes(buf)


# ---- JSON mutations -------------------------------------------------------------------------

WRONG_VALUES = ("x", "", [[1, 2], [3]], [], {}, None, -1, 0, 10**12, 2**63, 1e308, True,
                "é" * 3, [None], {"class_name": "Lambda"})
json_mutations = st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(WRONG_VALUES)),
                          min_size=1, max_size=3)


def _slots(value: Any, path: tuple = ()) -> list[tuple]:
    found = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _slots(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _slots(item, (*path, i))
    return found


def mutate_json(document: Any, mutations: list[tuple[int, Any]]) -> Any:
    """`document` with the value at a chosen place (every place is numbered) replaced."""
    document = json.loads(json.dumps(document))
    for pick, wrong in mutations:
        value = json.loads(json.dumps(wrong))  # a copy: the table's values stay as they are
        slots = _slots(document)
        if not slots:
            return value
        path = slots[pick % len(slots)]
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value
    return document


def findings(replies: list[tuple[str, dict]]) -> list[str]:
    return [f"{case}: {r['outcome']}: {r.get('message', '')} {r.get('where', '')}"
            for case, r in replies if not r.get("tf2torch")]
