"""`tf2torch` command line: each command mirrors a function of the Python API."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import os
import sys
import threading
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
    code = run_command(args.command, args.handler, args)
    if argv is None:
        _end_process(code)
    return code


def _end_process(code: int) -> None:
    """The command is done: end the process without the interpreter's teardown, which freed
    torch's modules object by object (0.5-1 s of every command that loaded torch here). What
    an exit must do still happens: exit handlers (temporary folders, workers) and flushed
    output. Not while another thread runs or a profiler, tracer or debugger watches (they
    write their results at exit)."""
    others = [t for t in threading.enumerate()
              if t is not threading.current_thread() and not t.daemon and t.is_alive()]
    if others or sys.gettrace() is not None or sys.getprofile() is not None:
        return
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code)


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
