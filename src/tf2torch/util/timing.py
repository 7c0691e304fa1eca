"""Where the time of a long command goes, phase by phase (`convert --profile`, `--json`)."""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tf2torch.util.stages import stage


class Timings:
    """Seconds per named phase, in the order first seen; a phase entered twice adds up."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.started = time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a phase; an error escaping it is marked with its name (`util.stages`)."""
        start = time.perf_counter()
        try:
            with stage(name):
                yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def to_dict(self) -> dict:
        """Phases, the total since creation, and this process's peak resident memory."""
        return {"phases_s": {k: round(v, 3) for k, v in self.seconds.items()},
                "total_s": round(time.perf_counter() - self.started, 3),
                "peak_rss_mib": round(peak_rss_mib(), 1)}


def peak_rss_mib() -> float:
    """This process's peak resident memory (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if peak > 1 << 32 else peak / 1024
