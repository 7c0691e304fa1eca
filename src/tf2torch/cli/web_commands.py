"""`tf2torch serve` and `tf2torch site`: the repository's pages, served or written out.

Registered in `commands.COMMANDS`; the web extra (`pip install 'tf2torch[web]'`) is imported
only when one of these runs, so `tf2torch --help` stays light.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tf2torch.errors import MissingDependencyError

SERVE_HELP = "browse the repository in a web browser: pages, proofs, try a model"
SERVE_DESCRIPTION = """\
Starts a local web app over the repository ($TF2TORCH_HOME/models): an index of every
package (filter by text and format), and a page per package with its model card, the
verification table, the per-layer error plot when one was recorded, inputs and outputs,
the encoder and decoder in words, a snippet to load it, downloads, and "Try it": upload an
image (or pick a sample) and get the top-5 labels and the annotated image, or each output's
shape, range and .npy for other models. Read-only: nothing in the repository can be changed
through it.

examples:
  tf2torch serve                                  http://127.0.0.1:8000/
  tf2torch serve mobilenet_v2_1.4_224 --open      open that model's page in a browser
  tf2torch serve --port 9000 --max-upload-mb 4
"""
SITE_HELP = "write the repository's pages as a static site (no try-it)"
SITE_DESCRIPTION = """\
Writes the same pages as `tf2torch serve` into OUT as plain files with relative links only,
so any web server, or the folder opened in a browser, can host them. Downloads are copied
next to each page (--no-weights leaves the weights out). OUT must be new, empty, or a
site tf2torch wrote before (it is replaced whole, atomically).

examples:
  tf2torch site public/                           then open public/index.html
  tf2torch site public/ --model mobilenet_v2_1.4_224 --no-weights
"""


def _need_web_extra() -> None:
    try:
        import jinja2  # noqa: F401
        import markdown_it  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"the web pages need the [web] extra ({exc.name} is missing): "
            "pip install 'tf2torch[web]'") from None


def serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="a package whose page to print and --open "
                   "(default: the index)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                   "127.0.0.1: this machine only; 0.0.0.0 exposes it to the network)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--open", action="store_true", help="open the page in a web browser")
    p.add_argument("--max-upload-mb", type=float, default=10.0,
                   help="largest try-it upload accepted (default 10 MiB)")
    p.add_argument("--max-megapixels", type=float, default=40.0,
                   help="largest image decoded, in millions of pixels (default 40; Pillow's "
                   "decompression-bomb guard applies too)")
    p.add_argument("--cache-models", type=int, default=4, metavar="N",
                   help="models kept loaded between requests (default 4)")
    p.add_argument("--concurrency", type=int, default=2, metavar="N",
                   help="try-it requests computed at once (default 2: one decodes and draws "
                   "while another runs the model; BENCHMARKS.md)")
    p.add_argument("--backend", choices=("torch-fast", "torch"), default="torch-fast",
                   help="torch-fast: the inference form (BatchNorm folded, channels-last; the "
                   "same numbers); torch: the package's module as loaded")


def serve(args: argparse.Namespace) -> int:
    _need_web_extra()
    # threads and OpenMP's waiting follow the project's one rule (tf2torch.util.threads):
    # `main` bounded the spinning before torch loaded; each model divides the free CPUs
    # among the --concurrency requests computed at once
    from tf2torch.packages import repository
    from tf2torch.web.app import Settings
    from tf2torch.web.server import serve as run_server
    from tf2torch.web.uploads import Limits

    limits = Limits(max_upload_bytes=int(args.max_upload_mb * (1 << 20)),
                    max_pixels=int(args.max_megapixels * 1e6))
    settings = Settings(home=repository.home(), limits=limits, cache_size=args.cache_models,
                        concurrency=args.concurrency, fast=args.backend == "torch-fast")
    run_server(settings, args.host, args.port, args.name, open_browser=args.open)
    return 0


def site_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", type=Path, help="folder to write the site into")
    p.add_argument("--model", action="append", metavar="NAME",
                   help="only this package (repeatable; default: all)")
    p.add_argument("--no-weights", action="store_true",
                   help="leave model.safetensors out of the downloads (pages stay complete)")
    p.add_argument("--json", action="store_true", help="machine-readable summary on stdout")


def site(args: argparse.Namespace) -> int:
    _need_web_extra()
    from tf2torch.packages import repository
    from tf2torch.web.site import write_site

    report = write_site(repository.home(), args.out, args.model, weights=not args.no_weights)
    if args.json:
        from tf2torch.cli.render import emit_json

        emit_json({"out": str(report.out), "pages": [str(p) for p in report.pages],
                   "files": report.files, "bytes": report.bytes,
                   "not_served": [{"name": n, "reason": r} for n, r in report.skipped]})
        return 0
    for name, why in report.skipped:
        print(f"tf2torch: {name} left out: {why}", file=sys.stderr)
    print(f"wrote {len(report.pages)} pages and {report.files} files "
          f"({report.bytes / (1 << 20):.1f} MiB) to {report.out}")
    print(f"open {report.out / 'index.html'}")
    return 0
