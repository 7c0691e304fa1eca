"""The child process of the fuzz tests: opens each file it is sent the way a command would.

Run by `fuzzing.py` under a memory cap (RLIMIT_AS) and a per-input timeout it enforces
from outside. One JSON line in per input (`{"kind": ..., "path": ...}`), one JSON line out:
`{"outcome": "ok" | "<error class>", "tf2torch": bool, "message": ...}`. Anything that is
not a `Tf2TorchError` is a finding; a signal, a hang or a memory blow-up is seen by the
parent as the process dying or going silent.
"""

from __future__ import annotations

import json
import sys
import traceback

import torch  # noqa: F401 - torch before anything that may import TensorFlow

import tf2torch
from tf2torch.conversion.convert import convert_source
from tf2torch.errors import Tf2TorchError
from tf2torch.sources import open_source


def _read(path: str) -> None:
    """A reader's whole surface: open, every tensor's data, and the conversion where the
    format has a graph (that is where shapes and attributes are used)."""
    source = open_source(path)
    for name in source.tensors:
        source.tensors[name]
    if source.graph is not None:
        convert_source(source)


def _package(path: str) -> None:
    model = tf2torch.load(path)
    model.net.eval()


def _cli(path: str, verify: bool = False) -> None:
    """The commands a user runs on a file, as the CLI runs them: `inspect`, `convert
    --no-verify` (and `verify`, which runs the original in a reference worker). Each must end
    with exit 0 or an input error's code, never the internal error's (a traceback under
    --debug), and a failed convert leaves nothing in its output folder."""
    import contextlib
    import io
    import tempfile
    from pathlib import Path

    from tf2torch.cli import main as cli
    from tf2torch.errors import INTERNAL_ERROR_EXIT

    with tempfile.TemporaryDirectory(prefix="tf2torch-fuzz-cli-") as scratch:
        out = Path(scratch) / "package"
        commands = [["inspect", path], ["convert", path, "--no-verify", "-o", str(out)]]
        for argv in commands + ([["verify", path]] if verify else []):
            stderr = io.StringIO()
            with contextlib.redirect_stderr(stderr):
                code = cli(argv)
            if code == INTERNAL_ERROR_EXIT:
                raise RuntimeError(f"tf2torch {argv[0]}: internal error: {stderr.getvalue()}")
            if argv[0] == "convert" and code != 0 and out.exists():
                raise RuntimeError(f"tf2torch convert failed (exit {code}) and left {out}")


KINDS = {"read": _read, "package": _package, "cli": _cli,
         "cli_verify": lambda path: _cli(path, verify=True)}


def main() -> None:
    out = sys.stdout
    sys.stdout = sys.stderr  # what libraries print stays out of the replies
    for line in sys.stdin:
        request = json.loads(line)
        try:
            KINDS[request["kind"]](request["path"])
            reply = {"outcome": "ok", "tf2torch": True}
        except Tf2TorchError as err:
            reply = {"outcome": type(err).__name__, "tf2torch": True, "message": str(err)}
        except BaseException as err:
            tail = traceback.format_exception(err)[-3:]
            reply = {"outcome": type(err).__name__, "tf2torch": False,
                     "message": f"{err!r}"[:300], "where": "".join(tail)[-800:]}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
