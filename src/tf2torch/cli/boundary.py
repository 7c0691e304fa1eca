"""The command line's outer edge: every failure leaves as one line, and other libraries'
warnings and log lines stay out of the user's terminal unless asked for.

Exit codes: 0 success, 1 the port disagrees with the original, 2 bad input or usage (a
`Tf2TorchError`, or argparse), 3 an internal error (a bug: the one line says where, `--debug`
shows the traceback), 130 interrupted (Ctrl-C), 141 the reader of the output went away (`| head`:
no message, as Unix tools do), 143 terminated (SIGTERM). Interrupted or
terminated, the command's own clean-up still runs: temporary folders go, packages and result
files are written whole or not at all.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tf2torch.errors import INTERNAL_ERROR_EXIT, INTERRUPTED_EXIT, Tf2TorchError
from tf2torch.util.stages import stage_of

# Libraries whose log lines are theirs to show only under --verbose.
THIRD_PARTY_LOGGERS = ("torch", "onnx", "onnxruntime", "onnxscript", "tensorflow", "absl",
                       "h5py", "PIL", "ray", "matplotlib", "urllib3")
# Where a command's argument names its input, in order of preference.
_SUBJECT_ARGS = ("source", "name", "model", "package")
_TERMINATED_EXIT = 128 + signal.SIGTERM
_PIPE_CLOSED_EXIT = 128 + signal.SIGPIPE


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("diagnostics")
    group.add_argument("--debug", action="store_true",
                       help="on an internal error, print the full traceback")
    group.add_argument("--verbose", action="store_true",
                       help="let other libraries' warnings and log lines through "
                       "(TensorFlow's start-up, torch's exporter, ...)")


@contextmanager
def quiet_third_parties(verbose: bool) -> Iterator[None]:
    """Silence other libraries' warnings and log lines for the command's duration."""
    # TensorFlow reads this when it starts, here or in a worker process: its C++ start-up logs
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "3")
    if verbose:
        yield
        return
    loggers = [logging.getLogger(name) for name in THIRD_PARTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        # tf2torch speaks through its own output, never `warnings`; what warns is torch,
        # TensorFlow, onnx... (often attributed to our line that called them)
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


@contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C (clean-ups run) instead of killing the process mid-write."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum: int, frame: object) -> None:
        raise SystemExit(_TERMINATED_EXIT)

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _subject(args: argparse.Namespace) -> str:
    for name in _SUBJECT_ARGS:
        value = getattr(args, name, None)
        if value:
            return f" {value}"
    return ""


def run_command(command: str, handler: Callable[[argparse.Namespace], int | None],
                args: argparse.Namespace) -> int:
    """Run a command's handler; return its exit code, whatever it raises."""
    where = f"tf2torch {command}{_subject(args)}"
    try:
        with quiet_third_parties(getattr(args, "verbose", False)), _terminate_cleanly():
            return int(handler(args) or 0)
    except Tf2TorchError as exc:
        print(f"tf2torch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{where}: interrupted; nothing half-written was left", file=sys.stderr)
        return INTERRUPTED_EXIT
    except BrokenPipeError:
        # what is still buffered for the closed pipe would fail again at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return _PIPE_CLOSED_EXIT
    except Exception as exc:  # a bug: one line, the traceback on request
        if getattr(args, "debug", False):
            traceback.print_exc()
        at = f" while in stage '{stage_of(exc)}'" if stage_of(exc) else ""
        detail = " ".join(str(exc).split())[:500]
        hint = "" if getattr(args, "debug", False) else "; rerun with --debug for the traceback"
        print(f"{where}: internal error{at}: {type(exc).__name__}: {detail}{hint}",
              file=sys.stderr)
        return INTERNAL_ERROR_EXIT
