"""Unpack the published TFLite models that the `mediapipe==0.10.14` wheel ships, for the tests.

    python tools/fetch_mediapipe_models.py .cache/mediapipe

Downloads the wheel from PyPI with pip (no install, no dependencies) and extracts only its
`mediapipe/modules/**/*.tflite` files; tests/test_tflite_published.py reads them through
TF2TORCH_MEDIAPIPE_DIR. Idempotent; exits 0 with a note when PyPI cannot be reached, so the
tests skip rather than fail.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# the one pin, shared with the runtime venv (later releases no longer ship the .tflite files)
from tf2torch.references.mediapipe_runtime import WHEEL


def main(target: Path) -> int:
    if (target / "DONE").exists():
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--only-binary=:all:", WHEEL, "-d", tmp]
        if subprocess.run(pip, check=False).returncode != 0:
            print(f"note: could not download {WHEEL}; the published-model tests will skip")
            return 0
        wheel = next(Path(tmp).glob("mediapipe-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.startswith("mediapipe/modules/") and name.endswith(".tflite") \
                        and ".." not in name.split("/"):
                    dest = target / name.removeprefix("mediapipe/")
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(archive.read(name))
    (target / "DONE").write_text(WHEEL + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
