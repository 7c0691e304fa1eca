"""Connecting to Ray, and sharing its CPUs between decoding tasks and model actors."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from tf2torch.errors import MissingDependencyError, Tf2TorchError

INSTALL_HINT = "pip install 'tf2torch[ray]'"
log = logging.getLogger(__name__)


def import_ray() -> Any:
    """Ray with Ray Data, or one error saying how to install it."""
    try:
        import ray
        import ray.data  # and Ray Data's own dependencies (pyarrow, pandas)
    except ImportError as exc:
        raise MissingDependencyError(
            f"the Ray engine needs Ray Data ({exc.name or 'ray'} is not installed): "
            f"{INSTALL_HINT}") from None
    return ray


@contextlib.contextmanager
def ray_cluster(ray: Any, address: str | None) -> Iterator[float]:
    """A connected Ray for the block; yields the seconds it took to start the local one.

    A Ray this process is already connected to is used as it is and left running; one this
    function started or joined is disconnected (a local one shut down) at the end.
    """
    if ray.is_initialized():
        yield 0.0
        return
    begin = time.perf_counter()
    local = {"include_dashboard": False} if address is None else {}
    try:
        ray.init(address=address, logging_level=logging.WARNING, **local)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise Tf2TorchError(f"could not start or join {where}: {exc}") from None
    try:
        yield 0.0 if address else time.perf_counter() - begin
    finally:
        ray.shutdown()


def actor_cpus(ray: Any, requested: float | None, max_actors: int, elastic: bool) -> float:
    """CPUs each model actor reserves, leaving at least one for the decoding tasks.

    Decoding runs in tasks that need a free CPU: actors that reserve every CPU of the
    cluster would leave the job waiting forever. By default an actor takes 1 CPU, less
    when the cluster is too small for that (2 actors on 2 CPUs: 0.5 each). A joined cluster
    (`elastic`) may add nodes as work queues up, so there a tight fit only warns.
    """
    total = float(ray.cluster_resources().get("CPU", 0.0))
    spare = total - 1.0
    cpus = requested if requested is not None else (
        1.0 if elastic or max_actors <= spare else round(spare / max_actors, 3))
    if cpus <= 0 or max_actors * cpus > spare + 1e-9:
        message = (f"{max_actors} model actor(s) × {cpus:g} CPU leave no CPU for decoding "
                   f"on a cluster of {total:g} CPUs; lower --concurrency or --cpus-per-actor "
                   "(fractions are allowed)")
        if not elastic or cpus <= 0:
            raise Tf2TorchError(message)
        log.warning("tf2torch: %s, unless the cluster scales up", message)
    return cpus
