"""Images per second: local `predict` against the Ray Data pipeline with 1 and 2 actors.

    .venv/bin/python benchmarks/scale_out.py [--images 2000] [--rounds 3] [--cache DIR]

The same job for every contender: MobileNetV2-1.4/224 (the stand-in TF-slim release, built
with TensorFlow into the cache when absent, converted once) over N generated 224×224 JPEGs,
top-5 per image, batch size 32, the inference form (`--backend torch-fast`). Each run is a
fresh process, as a user's command is; rounds interleave the contenders so a busy machine
slows them alike, and the table gives the median with the spread (min–max).

- local: `predict_files` in one process (torch with every core's thread);
- Ray, 1 actor: a local Ray started in the process; decoding in CPU tasks, the network in one
  actor (1 CPU, 1 torch thread), the other CPU left to decoding;
- Ray, 2 actors: the same with two actors of 0.5 CPU (1 thread) each.

For Ray, "job" is from building the pipeline to the last row written (the rate is over
that), "start" is `ray.init` starting the local cluster, and "first row" how long the job
took to return its first block (worker processes starting, each actor loading the package).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MULTIPLIER, SIZE, BATCH = 1.4, 224, 32
CONTENDERS = {"local": "local `predict` (one process, 2 threads)",
              "ray1": "Ray Data, 1 actor (1 CPU) + decoding tasks",
              "ray2": "Ray Data, 2 actors (0.5 CPU each) + decoding tasks"}


def main() -> int:
    args = parse_args()
    cache = Path(args.cache)
    if args.worker:
        print(json.dumps(run_worker(args.worker, cache, args.images)))
        return 0
    prepare(cache, args.images)
    load_before = os.getloadavg()
    results: dict[str, list[dict]] = {c: [] for c in CONTENDERS}
    for round_index in range(args.rounds):
        for contender in CONTENDERS:
            results[contender].append(run_in_subprocess(contender, cache, args.images))
            print(f"round {round_index + 1} {contender}: {results[contender][-1]}",
                  file=sys.stderr, flush=True)
    print(render(results, args, load_before, os.getloadavg()))
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache", default=str(REPO / ".cache" / "benchmarks"))
    parser.add_argument("--worker", choices=tuple(CONTENDERS), help=argparse.SUPPRESS)
    return parser.parse_args()


def paths(cache: Path, images: int) -> dict[str, Path]:
    name = f"mobilenet_v2_{MULTIPLIER:g}_{SIZE}"
    return {"release": cache / "release", "prefix": cache / "release" / name / f"{name}.ckpt",
            "package": cache / "package", "images": cache / f"images-{images}-{SIZE}",
            "output": cache / "scale_out.parquet"}


_PREPARE = f"""
import sys
from pathlib import Path
import torch  # before tensorflow
import numpy as np
from PIL import Image
sys.path.insert(0, {str(REPO / 'benchmarks')!r})
from scale_out import paths
p = paths(Path(sys.argv[1]), int(sys.argv[2]))
if not p["package"].exists():
    if not p["prefix"].with_suffix(".ckpt.index").exists():
        from tf2torch.references.standin import make_standin_release
        make_standin_release(p["release"], {MULTIPLIER}, {SIZE}, tflite=False, pack=False)
    from tf2torch.api import convert
    convert(p["prefix"], p["package"])
folder = p["images"]
if not (folder / "DONE").exists():
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    for i in range(int(sys.argv[2])):  # smooth colour fields with noise: JPEG sizes like photos'
        field = np.asarray(Image.fromarray(np.roll(base, i, axis=(0, 1))).resize(({SIZE}, {SIZE})))
        noisy = np.clip(field + rng.normal(0, 12, field.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(folder / f"img{{i:05d}}.jpg", quality=90)
    (folder / "DONE").write_text("ok")
"""


def prepare(cache: Path, images: int) -> None:
    p = paths(cache, images)
    if not (p["package"].exists() and (p["images"] / "DONE").exists()):
        subprocess.run([sys.executable, "-c", _PREPARE, str(cache), str(images)], check=True,
                       cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=1800)


def run_in_subprocess(contender: str, cache: Path, images: int) -> dict:
    argv = [sys.executable, __file__, "--worker", contender, "--cache", str(cache),
            "--images", str(images)]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=1200,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if done.returncode:
        return {"failed": done.stderr.strip().splitlines()[-1] if done.stderr else "?"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_worker(contender: str, cache: Path, images: int) -> dict:
    import torch  # noqa: F401 - imported before the clock starts, as in any process

    p = paths(cache, images)
    if contender == "local":
        from tf2torch import load
        from tf2torch.packages.predict import collect_images, predict_files

        model = load(p["package"], inference=True)
        start = time.perf_counter()
        results = predict_files(model, collect_images([p["images"]]), batch_size=BATCH)
        seconds = time.perf_counter() - start
        assert len(results) == images and not any(r.error for r in results)
        return {"images_per_second": round(images / seconds, 2), "seconds": round(seconds, 2)}
    from tf2torch import predict_dataset

    start = time.perf_counter()
    first: list[float] = []

    def progress(done: int, total: int) -> None:
        if not first:
            first.append(time.perf_counter() - start)

    job = predict_dataset(p["package"], [p["images"]], p["output"], overwrite=True,
                          batch_size=BATCH, concurrency=int(contender[-1]), backend="torch-fast",
                          on_progress=progress)
    assert job.images == images and job.errors == 0
    return {**job.to_dict(), "first_row_seconds": round(first[0] - job.cluster_start_seconds, 2)}


def render(results: dict[str, list[dict]], args: argparse.Namespace,
           load_before: tuple[float, ...], load_after: tuple[float, ...]) -> str:
    def cell(runs: list[dict], key: str, digits: int = 1) -> str:
        values = [r[key] for r in runs if key in r]
        if not values:
            return "-"
        return (f"{statistics.median(values):.{digits}f} "
                f"({min(values):.{digits}f}–{max(values):.{digits}f})")

    local = statistics.median([r["images_per_second"] for r in results["local"]
                               if "images_per_second" in r] or [float("nan")])
    lines = [f"{datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, {os.cpu_count()} CPUs, "
             f"{args.images} images of {SIZE}×{SIZE}, batch {BATCH}, {args.rounds} rounds; load "
             f"average {load_before[0]:.1f} before, {load_after[0]:.1f} after", "",
             "| contender | images/s, median (min–max) | vs local | job (s) | first row (s) "
             "| `ray.init` (s) |", "|---|---:|---:|---:|---:|---:|"]
    for contender, label in CONTENDERS.items():
        runs = results[contender]
        rates = [r["images_per_second"] for r in runs if "images_per_second" in r]
        ratio = f"{statistics.median(rates) / local:.2f}×" if rates else "-"
        lines.append(f"| {label} | {cell(runs, 'images_per_second')} | {ratio} | "
                     f"{cell(runs, 'seconds')} | {cell(runs, 'first_row_seconds', 2)} | "
                     f"{cell(runs, 'cluster_start_seconds', 2)} |")
    failed = [f"{c}: {r['failed']}" for c, runs in results.items() for r in runs if "failed" in r]
    return "\n".join(lines + (["", *failed] if failed else []))


if __name__ == "__main__":
    raise SystemExit(main())
