"""`tf2torch predict NAME IMAGES...`: classify images with a packaged model, streaming.

Registered in `commands.COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tf2torch.cli.render import emit_json
from tf2torch.cli.scale import ENGINE_HELP, add_scale_arguments, check_scale_options, run_ray, write_local

HELP = "classify images with a packaged model"
DESCRIPTION = """\
Top-k classes per image, as a table, --json or a results file (--output). Unreadable files
are reported and skipped; exit status 1 only when no image could be read. Over a folder, a
thread of its own decodes the next batches while the model runs on this one (progress bar in
images per second).

Threads: by default the free CPUs (affinity and cgroup quota, less what other processes
keep busy, looked at again every second); --threads N or TF2TORCH_THREADS=N fixes it.

examples:
  tf2torch predict mobilenet_v2_1.4_224 photo.jpg
  tf2torch predict mobilenet_v2_1.4_224 photos/ --batch-size 32 --backend torch-fast --json
  tf2torch predict mobilenet_v2_1.4_224 photos/ --device cuda --batch-size 128

""" + ENGINE_HELP


def predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="repository name or package folder")
    p.add_argument("images", nargs="+", help="image files, directories or glob patterns")
    p.add_argument("--top", type=int, default=5, help="classes per image (default 5)")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass "
                   "(default 16)")
    p.add_argument("--backend", choices=("torch", "torch-fast", "onnxruntime"), default="torch",
                   help="torch: the package's module; torch-fast: its fastest verified form "
                   "(the compiled form `tf2torch compile` built for this machine, else BN "
                   "folded and channels-last); onnxruntime: the verified ONNX export (made "
                   "and cached once)")
    p.add_argument("--device", default="cpu", metavar="DEVICE",
                   help="torch device for --backend torch: cpu (default), cuda, cuda:1, mps…; "
                   "on a GPU float32 stays float32 (no TF32), the numbers verified")
    p.add_argument("--threads", type=int, metavar="N", help="threads per forward pass "
                   "(default: TF2TORCH_THREADS, else the free CPUs)")
    p.add_argument("--annotate", type=Path, metavar="DIR",
                   help="also write each image with its labels drawn on it, as PNG, to DIR")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    add_scale_arguments(p)


def predict(args: argparse.Namespace) -> int:
    from tf2torch.api import load
    from tf2torch.packages.predict import collect_images, predict_files, render_results
    from tf2torch.util.threads import ThreadGovernor

    check_scale_options(args)
    device = _device(args)
    if args.engine == "ray":
        return run_ray(args)
    model = load(args.name, inference=args.backend == "torch-fast", threads=args.threads)
    if device.type != "cpu":
        from tf2torch.packages.predict import strict_float32

        strict_float32()
        model.net.to(device)
    if args.backend == "onnxruntime":
        from tf2torch.packages.export import with_onnxruntime

        model, _ = with_onnxruntime(model, threads=ThreadGovernor(args.threads).choose())
    elif args.backend == "torch":
        ThreadGovernor(args.threads).apply()
    paths = collect_images(args.images)
    if not paths:
        print("tf2torch: error: no images found", file=sys.stderr)
        return 2
    results = predict_files(model, paths, top=args.top, batch_size=args.batch_size)
    if args.annotate:
        _annotate(results, args.annotate)
    if args.output:
        return write_local(args, results)
    if args.json:
        emit_json([r.to_dict() for r in results])
    else:
        print(render_results(results))
    failed = sum(r.error is not None for r in results)
    if failed:
        print(f"tf2torch: {failed} of {len(results)} image(s) could not be read", file=sys.stderr)
    return 1 if failed == len(results) else 0


def _device(args: argparse.Namespace) -> Any:
    """The torch device `--device` names, refused (naming it) before any work when torch
    cannot use it here, or when another option runs elsewhere."""
    import torch

    from tf2torch.errors import Tf2TorchError

    if args.device == "cpu":
        return torch.device("cpu")
    if args.engine == "ray":
        raise Tf2TorchError(f"--device {args.device}: Ray places its actors itself; "
                            "give them GPUs with --num-gpus")
    if args.backend != "torch":
        raise Tf2TorchError(f"--device {args.device} runs --backend torch; --backend "
                            f"{args.backend} runs on the CPU")
    try:
        device = torch.device(args.device)
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError, ValueError) as exc:
        # the first sentence: torch's messages for a missing backend run to a page
        reason = (str(exc).strip() or type(exc).__name__).splitlines()[0].split(". ")[0]
        raise Tf2TorchError(f"--device {args.device}: torch cannot run there ({reason})") from None
    return device


def _annotate(results: list, folder: Path) -> None:
    from tf2torch.packages.codecs import annotate

    folder.mkdir(parents=True, exist_ok=True)
    for result in results:
        if result.error is None:
            annotate(Path(result.path), result.predictions, folder / (Path(result.path).stem + ".png"))
