"""Installs tf-keras (Keras 2) beside tensorflow-cpu without pulling in `tensorflow`.

    .venv/bin/python tools/install_tf_keras.py      (run by `make venv`)

Some tests build their fixtures with Keras 2, the `tf_keras` package. Its wheel requires
`tensorflow`, the CUDA build, which pip then installs beside the `tensorflow-cpu` that
`tf2torch[tf]` names. The two wheels write the same files under `tensorflow/`, and whichever
pip unpacked last won: with the CUDA build's files (a 1.1 GB `libtensorflow_cc.so.2` against
788 MB) TensorFlow's import took 0.5 s and 60 MiB more here, so tests and benchmarks ran a
different TensorFlow from the one users get. tf-keras is installed here without its
dependencies, at tensorflow-cpu's minor version; a venv that has both is mended (the CUDA
build removed, tensorflow-cpu's files written again).
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata


def installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *args], check=True)


def main() -> int:
    cpu = installed("tensorflow-cpu")
    if cpu is None:
        sys.exit("tensorflow-cpu is not installed: pip install -e '.[dev]' first")
    if installed("tensorflow") is not None:
        print("removing `tensorflow` (the CUDA build, which overwrote tensorflow-cpu's files)")
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "--quiet", "--yes",
                        "tensorflow"], check=True)
        pip("--force-reinstall", "--no-deps", f"tensorflow-cpu=={cpu}")
    major, minor = cpu.split(".")[:2]
    pip("--no-deps", f"tf-keras~={major}.{minor}.0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
