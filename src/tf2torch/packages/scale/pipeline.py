"""Local predict's job on Ray Data: list → decode + encode (CPU tasks) → model actors → rows.

    paths (listed on the driver, as local predict lists them)
      └─ from_items ─▶ map_batches(encode_images)      CPU tasks: read, decode, encode
                     ─▶ map_batches(PackagePredictor)   actor pool: the package loaded once
                                                        per actor; logits → top-k rows
                     ─▶ driver: rows streamed into one Parquet / JSON-lines file

Rows reach the driver block by block (a few hundred bytes per image) and are written to a
temporary file that is renamed into place at the end. Ray retries a failed task, and
restarts a killed actor and re-runs its batches; a block reaches the driver once, whole, so
each input appears exactly once (and the row count is checked before the file is moved into
place). Blocks keep input order (`preserve_order`): the file lists the images in local
predict's order.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tf2torch.errors import Tf2TorchError
from tf2torch.packages import repository
from tf2torch.packages.card import Card
from tf2torch.packages.package import CARD
from tf2torch.packages.predict import ImageResult, collect_images
from tf2torch.packages.scale.cluster import actor_cpus, import_ray, ray_cluster
from tf2torch.packages.scale.output import check_output, result_writer
from tf2torch.packages.scale.rows import COLUMNS, row_result
from tf2torch.packages.scale.workers import BACKENDS, ROUTE_COLUMN

# Rows per block, in batches: enough work per task to hide scheduling, small enough to
# spread over the cluster and to retry cheaply.
BATCHES_PER_BLOCK = 4
# What a decoding worker holds besides its pixels: Python with numpy, PIL and torch loaded.
WORKER_BYTES = 320 << 20

Concurrency = int | tuple[int, int]


@dataclass
class DatasetPrediction:
    """What a Ray job did. `results` holds the rows when no output file was given."""

    output: Path | None
    images: int
    errors: int
    seconds: float  # from building the pipeline to the last row written
    cluster_start_seconds: float  # starting the local Ray (0 when one was running or joined)
    actors: Concurrency
    cpus_per_actor: float
    package_routes: list[str] = field(default_factory=list)  # how the actors got the package
    results: list[ImageResult] | None = field(default=None, repr=False)

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"output": None if self.output is None else str(self.output),
                "images": self.images, "errors": self.errors, "seconds": round(self.seconds, 3),
                "images_per_second": round(self.images_per_second, 2),
                "cluster_start_seconds": round(self.cluster_start_seconds, 3),
                "actors": self.actors, "cpus_per_actor": self.cpus_per_actor,
                "package_routes": self.package_routes}


def predict_dataset(
    model: str | Path, inputs: Sequence[str | Path], output: str | Path | None = None, *,
    top: int = 5, batch_size: int = 32, concurrency: Concurrency = 1,
    cpus_per_actor: float | None = None, num_gpus: float = 0.0, backend: str = "torch",
    address: str | None = None, overwrite: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> DatasetPrediction:
    """Classify `inputs` (files, folders, globs) with a package on Ray Data.

    `output` (.parquet, or .jsonl) receives one row per input file (see `rows.py`); without
    it the rows come back in `results`. `concurrency` is the number of model actors, or a
    (min, max) pair for an autoscaling pool; each actor reserves `cpus_per_actor` CPUs (its
    torch threads; default 1, less on a cluster too small to leave decoding a CPU) and
    `num_gpus` GPUs (a fraction shares one). Without `address` a local Ray is started (or
    the one this process is connected to is used); `address` joins a cluster ("auto",
    "HOST:6379"). `on_progress(done, total)` is called as rows arrive.
    """
    _check_options(top, batch_size, concurrency, cpus_per_actor, num_gpus, backend)
    ray = import_ray()
    package = repository.resolve(model)
    card = Card.read(package / CARD)
    if card.encoder is None or card.decoder is None:
        raise Tf2TorchError(f"{package}: the package has no encoder/decoder; it cannot classify")
    paths = collect_images(inputs)
    if not paths:
        raise Tf2TorchError(f"no images found in {', '.join(map(str, inputs))}")
    if output is not None:
        check_output(Path(output), overwrite)  # refuse before starting anything
    max_actors = concurrency if isinstance(concurrency, int) else concurrency[1]
    with ray_cluster(ray, address) as started:
        cpus = actor_cpus(ray, cpus_per_actor, max_actors, elastic=address is not None)
        begin = time.perf_counter()
        dataset = _build(ray, package, card, paths, top=top, batch_size=batch_size,
                         concurrency=concurrency, cpus_per_actor=cpus, num_gpus=num_gpus,
                         backend=backend)
        done = _Progress(len(paths), on_progress)
        # Closed explicitly, so a failure or Ctrl-C here stops Ray's work at once.
        with contextlib.closing(iter(dataset.iter_batches(batch_size=None,
                                                          batch_format="pyarrow"))) as blocks:
            if output is None:
                results = [row_result(row) for table in blocks for row in done(table).to_pylist()]
                done.check()
                errors = sum(r.error is not None for r in results)
            else:
                results = None
                with result_writer(output, overwrite) as sink:
                    for table in blocks:
                        sink.write_table(done(table))
                    done.check()  # before the file is moved into place
                errors = sink.errors
        seconds = time.perf_counter() - begin
    return DatasetPrediction(None if output is None else Path(output), len(paths), errors,
                             seconds, started, concurrency, cpus, sorted(done.routes), results)


def _build(ray: Any, package: Path, card: Card, paths: Sequence[Path], *, top: int,
           batch_size: int, concurrency: Concurrency, cpus_per_actor: float, num_gpus: float,
           backend: str) -> Any:
    from ray.data import ActorPoolStrategy, DataContext

    from tf2torch.packages.codecs import Encoder
    from tf2torch.packages.scale.shipping import ship
    from tf2torch.packages.scale.workers import PackagePredictor, encode_images

    rows_per_block = batch_size * BATCHES_PER_BLOCK
    block_bytes = rows_per_block * math.prod(Encoder.from_dict(card.encoder).sample_shape) * 4
    context = DataContext.get_current()
    keep = context.execution_options.preserve_order
    context.execution_options.preserve_order = True  # each Dataset keeps its own copy
    try:
        items = ray.data.from_items([{"path": str(p)} for p in paths],
                                    override_num_blocks=math.ceil(len(paths) / rows_per_block))
        # The memory a decoding task reserves (a block's pixels, decoded and encoded) keeps
        # Ray from starting more than a node holds; as a remote argument the actors do not
        # share, it also keeps Ray from fusing decoding into them: the actors run only the
        # network, and decoding spreads over every free CPU of the cluster.
        encoded = items.map_batches(encode_images, fn_kwargs={"encoder": card.encoder},
                                    batch_size=batch_size, batch_format="numpy", num_cpus=1,
                                    memory=WORKER_BYTES + 3 * block_bytes)
        sizes = ({"size": concurrency} if isinstance(concurrency, int)
                 else {"min_size": concurrency[0], "max_size": concurrency[1]})
        # Ray's actor defaults carry the fault tolerance: a killed actor is restarted and
        # the batches it held are run again.
        return encoded.map_batches(
            PackagePredictor, batch_size=batch_size, batch_format="numpy",
            fn_constructor_kwargs={"shipment": ship(package), "top": top, "backend": backend,
                                   "num_gpus": num_gpus, "threads": max(1, round(cpus_per_actor))},
            compute=ActorPoolStrategy(**sizes), num_cpus=cpus_per_actor, num_gpus=num_gpus or None)
    finally:
        context.execution_options.preserve_order = keep


class _Progress:
    """Counts rows as blocks arrive and tells the caller."""

    def __init__(self, total: int, callback: Callable[[int, int], None] | None) -> None:
        self.total, self.rows, self.callback = total, 0, callback
        self.routes: set[str] = set()

    def __call__(self, table: Any) -> Any:
        self.rows += table.num_rows
        self.routes.update(table.column(ROUTE_COLUMN).to_pylist())
        if self.callback:
            self.callback(self.rows, self.total)
        return table.select(list(COLUMNS))

    def check(self) -> None:
        if self.rows != self.total:  # a lost or repeated block: never hand on such rows
            raise Tf2TorchError(f"Ray returned {self.rows} rows for {self.total} images")


def _check_options(top: int, batch_size: int, concurrency: Concurrency,
                   cpus_per_actor: float | None, num_gpus: float, backend: str) -> None:
    sizes = (concurrency,) if isinstance(concurrency, int) else tuple(concurrency)
    checks = {
        "top": top >= 1, "batch_size": batch_size >= 1,
        "concurrency": len(sizes) in (1, 2) and sizes == tuple(sorted(sizes))
                       and all(isinstance(s, int) and s >= 1 for s in sizes),
        "cpus_per_actor": cpus_per_actor is None or cpus_per_actor > 0,
        "num_gpus": num_gpus >= 0, "backend": backend in BACKENDS,
    }
    wrong = [name for name, ok in checks.items() if not ok]
    if wrong:
        raise Tf2TorchError(
            f"invalid Ray options: {', '.join(wrong)} (top, batch size and actors ≥ 1, "
            f"concurrency N or (MIN, MAX), CPUs > 0, GPUs ≥ 0, backend one of {BACKENDS})")
