"""`predict`'s options for results files and for scaling out on Ray (`--engine ray`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tf2torch.cli.render import emit_json

ENGINE_HELP = """\
results files and scale-out:
  tf2torch predict NAME photos/ --output labels.parquet          one row per image, local
  tf2torch predict NAME photos/ --engine ray --output labels.parquet --concurrency 2
  tf2torch predict NAME /shared/images --engine ray --address auto --num-gpus 1 \\
      --concurrency 4 --batch-size 128 --output /shared/labels.parquet
"""


def concurrency(text: str) -> int | tuple[int, int]:
    """`N` actors, or `MIN-MAX` for an autoscaling pool."""
    try:
        sizes = tuple(int(part) for part in text.split("-", 1))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1 or sizes != tuple(sorted(sizes)):
        raise argparse.ArgumentTypeError(f"expected N or MIN-MAX actors (N ≥ 1), got {text!r}")
    return sizes[0] if len(sizes) == 1 else sizes  # type: ignore[return-value]


def add_scale_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "results files and Ray",
        "Rows (path, top-k indices, labels, WordNet ids, scores, error) go to --output,\n"
        "written to a temporary file and moved into place when complete. --engine ray runs\n"
        "the same job on Ray Data: decoding in CPU tasks, the network in a pool of actors\n"
        "that each load the package once (needs the [ray] extra: pip install 'tf2torch[ray]').")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process (default); ray: a Ray Data pipeline, on a local "
                   "Ray or the cluster at --address")
    g.add_argument("-o", "--output", type=Path, metavar="FILE",
                   help="write one row per image to FILE: .parquet (default) or .jsonl")
    g.add_argument("--overwrite", action="store_true",
                   help="replace an existing --output (default: refuse; never appends)")
    g.add_argument("--address", help="ray: join this cluster ('auto' on a cluster node, "
                   "HOST:6379); default: start a local Ray for the job")
    g.add_argument("--concurrency", type=concurrency, default=1, metavar="N|MIN-MAX",
                   help="ray: model actors, or an autoscaling range (default 1)")
    g.add_argument("--cpus-per-actor", type=float, metavar="C",
                   help="ray: CPUs (torch threads) each actor reserves (default 1; less when "
                   "the cluster would have none left for decoding)")
    g.add_argument("--num-gpus", type=float, default=0.0, metavar="G",
                   help="ray: GPUs per actor (0.5 puts two actors on one GPU; default 0)")


def check_scale_options(args: argparse.Namespace) -> None:
    """Refuse contradictory options, and an existing --output, before any work is done."""
    from tf2torch.errors import Tf2TorchError

    ray_only = [flag for flag, value in (("--address", args.address),
                                         ("--num-gpus", args.num_gpus),
                                         ("--cpus-per-actor", args.cpus_per_actor),
                                         ("--concurrency", args.concurrency != 1)) if value]
    if args.engine == "local" and ray_only:
        raise Tf2TorchError(f"{', '.join(ray_only)}: Ray options; add --engine ray")
    if args.engine == "ray" and (args.annotate or args.backend == "onnxruntime"):
        raise Tf2TorchError("--engine ray runs --backend torch or torch-fast, without --annotate")
    if args.output is not None:
        from tf2torch.packages.scale.output import check_output

        check_output(args.output, args.overwrite)


def run_ray(args: argparse.Namespace) -> int:
    """`predict --engine ray`: the job on Ray Data; rows to --output or to the terminal."""
    from tf2torch.api import predict_dataset

    job = predict_dataset(
        args.name, args.images, args.output, top=args.top, batch_size=args.batch_size,
        concurrency=args.concurrency, cpus_per_actor=args.cpus_per_actor,
        num_gpus=args.num_gpus, backend=args.backend, address=args.address,
        overwrite=args.overwrite)
    return _report(args, job.results or [], job.to_dict())


def write_local(args: argparse.Namespace, results: list) -> int:
    """Local predict's results written to --output as rows."""
    from tf2torch.packages.scale.output import result_writer
    from tf2torch.packages.scale.rows import result_row

    with result_writer(args.output, args.overwrite) as sink:
        sink.write_rows([result_row(r) for r in results])
    return _report(args, results, {"output": str(args.output), "images": sink.rows,
                                   "errors": sink.errors})


def _report(args: argparse.Namespace, results: list, info: dict) -> int:
    failed = info["errors"]
    if args.output is None:
        from tf2torch.packages.predict import render_results

        if args.json:
            emit_json([r.to_dict() for r in results])
        else:
            print(render_results(results))
    elif args.json:
        emit_json(info)
    else:
        rate = f", {info['images_per_second']:.1f} images/s" if "images_per_second" in info else ""
        print(f"{info['images']} images → {args.output} ({failed} unreadable{rate})")
    if failed:
        print(f"tf2torch: {failed} of {info['images']} image(s) could not be read", file=sys.stderr)
    return 1 if failed == info["images"] else 0
