"""Unpack the published TFLite models that the `mediapipe==0.10.14` wheel ships, for the tests.

    python tools/fetch_mediapipe_models.py .cache/mediapipe

Downloads the wheel from PyPI with pip (no install, no dependencies) and extracts only its
`mediapipe/modules/**/*.tflite` files; tests/test_tflite_published.py reads them through
TF2TORCH_MEDIAPIPE_DIR. Idempotent; written into a temporary folder and moved into place
only when complete. When PyPI cannot be reached it fails loudly (exit 1), unless the user
opted out with TF2TORCH_OFFLINE=1: then it exits 0 and the tests that need the models skip,
and say so.
"""

from __future__ import annotations

import os
import shutil
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
            return offline(f"could not download {WHEEL} from PyPI")
        wheel = next(Path(tmp).glob("mediapipe-*.whl"))
        staging = Path(tmp) / "models"
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.startswith("mediapipe/modules/") and name.endswith(".tflite") \
                        and ".." not in name.split("/"):
                    dest = staging / name.removeprefix("mediapipe/")
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(archive.read(name))
        (staging / "DONE").write_text(WHEEL + "\n")
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staging, target)
    return 0


def offline(why: str) -> int:
    """A failed fetch fails `make test`, unless the user opted out with TF2TORCH_OFFLINE=1."""
    if os.environ.get("TF2TORCH_OFFLINE") == "1":
        print(f"note: {why}; TF2TORCH_OFFLINE=1, so the tests that need it will skip")
        return 0
    print(f"error: {why}. The published-model tests need it; run where PyPI is reachable, "
          "or set TF2TORCH_OFFLINE=1 to skip those tests knowingly.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
