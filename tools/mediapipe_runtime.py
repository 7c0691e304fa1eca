"""Make a Python environment with MediaPipe's runtime, the reference for `.tflite` files that
use MediaPipe-only custom ops (tests/test_tflite_published.py, `TF2TORCH_MEDIAPIPE_PYTHON`).

    python tools/mediapipe_runtime.py .cache/mediapipe-runtime   # prints its python

mediapipe 0.10 pins numpy<2 and protobuf<5, which TensorFlow does not accept, so it gets a
venv of its own. Only what its calculator graph needs is installed (the wheel without its
dependencies, plus numpy, protobuf, absl-py, attrs, flatbuffers): not OpenCV, matplotlib,
jax or sounddevice. Idempotent; exits 0 with a note when PyPI cannot be reached, so the
tests that need it skip rather than fail.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

WHEEL = "mediapipe==0.10.14"  # the release whose .tflite files tools/fetch_mediapipe_models.py unpacks
NEEDS = ["numpy<2", "protobuf>=4.25.3,<5", "absl-py", "attrs>=19.1.0", "flatbuffers>=2.0"]


def main(target: Path) -> int:
    python = target / "bin" / "python"
    if (target / "DONE").exists():
        print(python)
        return 0
    venv.create(target, with_pip=True, clear=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for step in ([*pip, "--no-deps", "--only-binary=:all:", WHEEL], [*pip, *NEEDS]):
        # captured: pip's complaint about the dependencies left out on purpose is noise
        done = subprocess.run(step, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr.strip().splitlines()[-1:])
            print(f"note: could not install {WHEEL}; tests needing MediaPipe's runtime will skip")
            return 0
    (target / "DONE").write_text(WHEEL + "\n")
    print(python)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
