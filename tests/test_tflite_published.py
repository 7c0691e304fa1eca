"""Published TFLite vision models that PyPI packages ship (MediaPipe), against TFLite.

Skipped unless the models are at hand: either `mediapipe` (0.10.x, which ships its .tflite
files) is installed, or TF2TORCH_MEDIAPIPE_DIR names an unpacked wheel's `mediapipe` folder.
mediapipe is not a dependency of tf2torch (about 35 MB and pins its own numpy/protobuf).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

from tf2torch.errors import UnsupportedError
from tf2torch.graph import convert_graph
from tf2torch.sources.tflite import read_tflite
from tflite_models import verify_tflite

# Converted and verified within the tolerance (docs/tflite_compatibility.md has the figures).
PASSING = [
    "face_detection/face_detection_short_range.tflite",
    "face_detection/face_detection_full_range_sparse.tflite",
    "pose_detection/pose_detection.tflite",
    "face_landmark/face_landmark.tflite",
    "hand_landmark/hand_landmark_lite.tflite",
    "hand_landmark/hand_landmark_full.tflite",
    "holistic_landmark/hand_recrop.tflite",
    "iris_landmark/iris_landmark.tflite",
    "palm_detection/palm_detection_lite.tflite",
    "palm_detection/palm_detection_full.tflite",
    "selfie_segmentation/selfie_segmentation.tflite",
    "selfie_segmentation/selfie_segmentation_landscape.tflite",
]
# Refused, naming the ops (MediaPipe's attention custom ops).
REFUSED = {
    "face_landmark/face_landmark_with_attention.tflite": "TransformTensorBilinear",
}


def _modules_dir() -> Path | None:
    env = os.environ.get("TF2TORCH_MEDIAPIPE_DIR")
    if env:
        return Path(env) / "modules"
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "modules"


def _model(relative: str) -> Path:
    folder = _modules_dir()
    if folder is None or not (folder / relative).exists():
        pytest.skip(f"{relative}: mediapipe 0.10.x models not available")
    return folder / relative


@pytest.mark.parametrize("relative", PASSING)
def test_published_model_matches_interpreter(relative: str) -> None:
    report = verify_tflite(_model(relative))
    assert report.passed, report.table()


@pytest.mark.parametrize(("relative", "op"), sorted(REFUSED.items()))
def test_published_model_with_unsupported_ops_is_refused(relative: str, op: str) -> None:
    with pytest.raises(UnsupportedError, match=op):
        convert_graph(read_tflite(_model(relative)))
