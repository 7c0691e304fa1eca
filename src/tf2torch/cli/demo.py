"""`tf2torch demo`: the whole job on a built-in default, with no arguments.

No pretrained checkpoint can be downloaded here, so it builds a stand-in for the TF-slim
release `mobilenet_v2_1.4_224.tgz` with TensorFlow (see `standin.py`), then runs exactly
what a user runs on the real release: convert (verify against the release's frozen graph,
publish), record the per-layer comparison in the package, list, load, classify; and it ends
with the one command that opens the published model's pages in a browser.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tf2torch.errors import MissingDependencyError
from tf2torch.packages import repository


def run_demo(multiplier: float = 1.4, size: int = 224, workdir: Path | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import torch  # noqa: F401 - torch before tensorflow, always

    try:
        from tf2torch.references import standin
    except ImportError as exc:  # pragma: no cover - standin imports TF lazily
        raise MissingDependencyError("the demo needs TensorFlow: pip install 'tf2torch[tf]'") \
            from exc
    from tf2torch.api import convert, load, verify_layers

    with standin.quiet():  # TensorFlow's start-up chatter on stderr (CUDA probing, absl)
        import tensorflow as tf

        tf.constant(0.0).numpy()

    workdir = workdir or repository.home() / "demo"
    name = standin.release_name(multiplier, size)
    archive = workdir / f"{name}.tgz"
    if archive.exists():
        print(f"[1/5] stand-in release already built: {archive}")
    else:
        print(f"[1/5] building a stand-in for the TF-slim release {name}.tgz with TensorFlow "
              "(random weights: the real release is not downloadable here) …")
        with standin.quiet():
            standin.make_standin_release(workdir, multiplier, size)
        print(f"      wrote {archive}")
    photo = _sample_photo(workdir)
    print(f"[2/5] tf2torch convert {archive.name} --images {photo.name} --overwrite")
    print("      reads the checkpoint without TensorFlow; verifies against the release's frozen "
          "graph on zeros, a seeded random batch and a real photo")
    result = convert(archive, overwrite=True, images=[photo])
    print(result.verification.table() if result.verification else "not verified")
    print(f"      package: {result.path}")
    print(f"[3/5] tf2torch verify {archive.name} --per-layer --package {name}")
    print("      compares every conv, BatchNorm and block output with the frozen graph's and "
          "records the report and its plot in the package")
    with standin.quiet():
        layers = verify_layers(archive, package=name)
    within = sum(row.passed for row in layers.rows)
    print(f"      {within} of {len(layers.rows)} layers within tolerance; "
          f"verdict {'PASS' if layers.passed else 'FAIL'}")
    print("[4/5] tf2torch list")
    for entry in repository.list_names():
        print(f"      {entry}")
    print(f"[5/5] tf2torch.load({name!r}).classify({photo.name!r})")
    model = load(name)
    for p in model.classify(photo, top=3)[0]:
        print(f"      {p.probability:7.4f}  {p.index:4d}  {p.label}")
    print("      (labels are meaningless: the stand-in's weights are random. On the real "
          f"release: tf2torch convert {name}.tgz)")
    print()
    print("See its pages (model card, verification, per-layer plot, try it on your photos):")
    print(f"    {_command()} serve {name} --open")
    return 0


def _command() -> str:
    """How the user called tf2torch (`.venv/bin/tf2torch` from `make demo`)."""
    called = Path(sys.argv[0])
    try:
        return str(called.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return "tf2torch" if called.name == "tf2torch" else str(called)


def _sample_photo(workdir: Path) -> Path:
    """scikit-image's astronaut photo, saved as a JPEG (a real photo shipped by PyPI)."""
    from PIL import Image

    path = workdir / "astronaut.jpg"
    if not path.exists():
        from skimage import data

        Image.fromarray(data.astronaut()).save(path, quality=95)
    return path
