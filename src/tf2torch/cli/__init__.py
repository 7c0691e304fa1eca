"""`tf2torch` command line: each command mirrors a function of the Python API."""

from __future__ import annotations

import argparse
import gc
from collections.abc import Sequence

EPILOG = """\
examples:
  tf2torch demo                                   build a stand-in release, convert, verify
  tf2torch inspect mobilenet_v2_1.4_224.tgz       tensors by scope, shapes, parameter counts
  tf2torch convert mobilenet_v2_1.4_224.tgz       convert + verify + publish to the repository
  tf2torch convert model.ckpt --input-size 160 -o ./mnv2   write the package to a folder
  tf2torch inspect saved_model_dir/               signatures, ops, variables of a SavedModel
  tf2torch convert saved_model_dir/ --signature serving_default --labels imagenet
  tf2torch convert model_frozen.pb                a frozen GraphDef (also: model.ckpt.meta)
  tf2torch verify mobilenet_v2_1.4_224.tgz --images cat.jpg --json
  tf2torch list | show NAME | remove NAME         the local repository ($TF2TORCH_HOME)
  tf2torch predict mobilenet_v2_1.4_224 photos/ --top 3
  tf2torch predict mobilenet_v2_1.4_224 photos/ --engine ray --output labels.parquet
  tf2torch export mobilenet_v2_1.4_224 --onnx mnv2.onnx
  tf2torch serve mobilenet_v2_1.4_224 --open      the repository as web pages; try a model
  tf2torch site public/                           the same pages as a static site
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every failure is one line on stderr and an exit code
    (`tf2torch.cli.boundary` lists them)."""
    from tf2torch.cli.boundary import run_command

    if argv is None:  # this process is the command (not a caller's, nor a test's)
        # A command's process is short and builds large object graphs once (torch's import
        # alone makes ~1000 modules): the collector's default thresholds walked them over
        # and over, 0.3-0.5 s of `tf2torch convert` here. Collect far less often (as mypy
        # does); cyclic garbage still goes, at most 100 000 objects late.
        gc.set_threshold(100_000, 50, 50)
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(args.command, args.handler, args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tf2torch",
        description="Convert pretrained TensorFlow models (SavedModels, frozen GraphDefs, TF1 "
                    "meta graphs, TF-slim checkpoints and release archives, Keras .keras/.h5, "
                    ".tflite) into verified PyTorch packages.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    from tf2torch.cli import commands

    for command in commands.COMMANDS:
        command.register(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"tf2torch {version('tf2torch')}"
    except PackageNotFoundError:
        return "tf2torch (version unknown: not installed)"


if __name__ == "__main__":
    raise SystemExit(main())
