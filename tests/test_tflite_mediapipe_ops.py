"""MediaPipe's attention custom ops (face_landmark_with_attention) and their FlexBuffers options.

Expected values are worked out by hand from the ops' definitions (MediaPipe's CPU kernels),
not by running tf2torch twice. The real-file test needs the model: TF2TORCH_MEDIAPIPE_DIR
names an unpacked mediapipe wheel's `mediapipe` folder.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

from tf2torch.conversion.graph.tflite.mediapipe_modules import (
    LandmarksToTransformMatrix,
    TransformLandmarks,
    TransformTensorBilinear,
)
from tf2torch.sources.tflite import flexbuffer

_MODEL = "modules/face_landmark/face_landmark_with_attention.tflite"


def _matrix(rows: list[list[float]]) -> torch.Tensor:
    """A (1, 4, 4) matrix from its first two rows (the rest identity)."""
    full = [*rows, [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    return torch.tensor([full], dtype=torch.float32)


# ---- FlexBuffers -------------------------------------------------------------------------------

def test_flexbuffer_map_of_ints() -> None:
    # TransformTensorBilinear's options in face_landmark_with_attention.tflite: a map of two
    # 1-byte ints, keys stored as null-terminated strings before it.
    raw = b"output_height\x00output_width\x00\x02\x1c\x0f\x02\x01\x02\x10\x10\x04\x04\x04$\x01"
    assert flexbuffer.loads(raw) == {"output_height": 16, "output_width": 16}


def test_flexbuffer_matches_reference_builder() -> None:
    flexbuffers = pytest.importorskip("flatbuffers.flexbuffers")
    value = {"a": 1, "b": -3.5, "c": [1, 2, 300], "d": "hello", "e": [1, "x", 2.5, True],
             "f": {"g": 70000, "h": [0.5, 1.5]}, "big": 2**40, "neg": -200}
    assert flexbuffer.loads(bytes(flexbuffers.Dumps(value))) == value


# ---- Landmarks2TransformMatrix -----------------------------------------------------------------

def _landmarks(points: list[tuple[float, float]], count: int = 8) -> torch.Tensor:
    """(1, count, 3) landmarks: `points` first, the rest far away (not in any subset)."""
    data = torch.full((1, count, 3), 1000.0)
    for i, (x, y) in enumerate(points):
        data[0, i] = torch.tensor([x, y, 7.0])
    return data


def test_landmarks_to_matrix_axis_aligned() -> None:
    # Rotation points (10, 20) → (30, 20): horizontal. Subset box x 10..30, y 10..40, centre
    # (20, 25). Crop 16 x 16 scaled 1.5: 1.5 * 20 / 16 = 1.875 input px per crop px in x,
    # 1.5 * 30 / 16 = 2.8125 in y; crop pixel (8, 8) lands on the centre.
    points = [(10, 20), (30, 20), (10, 10), (30, 40), (20, 25)]
    op = LandmarksToTransformMatrix(subset=[0, 1, 2, 3, 4], left=0, right=1, target_rotation=0.0,
                                    output_size=(16, 16), scale=(1.5, 1.5))
    expected = _matrix([[1.875, 0, 0, 20 - 8 * 1.875], [0, 2.8125, 0, 25 - 8 * 2.8125]])
    torch.testing.assert_close(op(_landmarks(points)), expected)


def test_landmarks_to_matrix_rotated() -> None:
    # Rotation points (0, 0) → (0, 10): the crop's x axis runs along +y. The subset spans
    # x 0..4, y 0..10 in the image: the crop is 10 wide (along y) and 4 high (along x), its
    # centre (2, 5). A 2 x 2 crop: 5 px per crop px along y, 2 along x. Crop x → image +y;
    # crop y → image -x (a right-handed turn by +90°, y pointing down), so crop (0, 0) is the
    # image corner (4, 0) and crop (2, 2) is (0, 10).
    points = [(0, 0), (0, 10), (4, 5)]
    op = LandmarksToTransformMatrix(subset=[0, 1, 2], left=0, right=1, target_rotation=0.0,
                                    output_size=(2, 2), scale=(1.0, 1.0))
    expected = _matrix([[0, -2, 0, 4], [5, 0, 0, 0]])
    torch.testing.assert_close(op(_landmarks(points)), expected, atol=1e-5, rtol=0)


def test_landmarks_to_matrix_target_rotation() -> None:
    # Target rotation π/2 with horizontal rotation points: the crop turns by -90° instead.
    points = [(0, 0), (10, 0), (5, 4)]
    op = LandmarksToTransformMatrix(subset=[0, 1, 2], left=0, right=1,
                                    target_rotation=math.pi / 2, output_size=(2, 2),
                                    scale=(1.0, 1.0))
    matrix = op(_landmarks(points))
    # Crop x runs along image -y, crop y along +x; extents: 4 along y, 10 along x.
    expected = _matrix([[0, 5, 0, 0], [-2, 0, 0, 4]])
    torch.testing.assert_close(matrix, expected, atol=1e-5, rtol=0)


# ---- TransformTensorBilinear -------------------------------------------------------------------

def _features(h: int = 6, w: int = 7, c: int = 3) -> torch.Tensor:
    """(1, h, w, c) with value 100 * row + col + channel / 10: every sample identifiable."""
    rows = torch.arange(h, dtype=torch.float32)[:, None, None] * 100
    cols = torch.arange(w, dtype=torch.float32)[None, :, None]
    chans = torch.arange(c, dtype=torch.float32)[None, None, :] / 10
    return (rows + cols + chans)[None]


def test_bilinear_translation_is_a_crop() -> None:
    x = _features()
    op = TransformTensorBilinear(output_size=(3, 4), channels_first=False)
    out = op(x, _matrix([[1, 0, 0, 2], [0, 1, 0, 1]]))
    torch.testing.assert_close(out, x[:, 1:4, 2:6])


def test_bilinear_outside_is_zero() -> None:
    # Shifted 4 columns right: crop columns 3 and 4 fall on input columns 7 and 8 (width 7).
    x = _features()
    op = TransformTensorBilinear(output_size=(2, 5), channels_first=False)
    out = op(x, _matrix([[1, 0, 0, 4], [0, 1, 0, 0]]))
    torch.testing.assert_close(out[:, :, :3], x[:, 0:2, 4:7])
    assert torch.all(out[:, :, 3:] == 0)


def test_bilinear_fractional_weights() -> None:
    # A quarter-pixel shift: 0.75 of column x plus 0.25 of column x + 1; the last column
    # samples at 6.25 > width - 1 and is zero (the kernel does not clamp).
    x = _features()
    op = TransformTensorBilinear(output_size=(6, 7), channels_first=False)
    out = op(x, _matrix([[1, 0, 0, 0.25], [0, 1, 0, 0.5]]))
    row, col = 2, 3  # samples (x, y) = (3.25, 2.5)
    expected = 0.5 * (0.75 * x[0, 2, 3] + 0.25 * x[0, 2, 4]) + 0.5 * (0.75 * x[0, 3, 3] + 0.25 * x[0, 3, 4])
    torch.testing.assert_close(out[0, row, col], expected)
    torch.testing.assert_close(out[0, row, col], torch.tensor([253.25, 253.35, 253.45]))
    assert torch.all(out[0, :, 6] == 0)
    assert torch.all(out[0, 5, :] == 0)  # row 5 samples at y = 5.5 > height - 1


def test_bilinear_half_pixel_scaling() -> None:
    # The kernel maps pixel centres: it samples at T · (x + 0.5) - 0.5. With scale 2 and
    # translation -0.5 that is 2 (x + 0.5) - 0.5 - 0.5 = 2 x: every other input pixel.
    x = _features()
    op = TransformTensorBilinear(output_size=(3, 3), channels_first=False)
    out = op(x, _matrix([[2, 0, 0, -0.5], [0, 2, 0, -0.5]]))
    torch.testing.assert_close(out, x[:, 0:6:2, 0:6:2])


def test_bilinear_channels_first_takes_the_lowered_matrix() -> None:
    # Channels-first, the lowering moves axis -1 of every rank-3 input to axis 1: the matrix
    # arrives transposed, the feature map as NCHW.
    x = _features()
    matrix = _matrix([[1, 0, 0, 0.25], [0, 1, 0, 1.5]])
    nhwc = TransformTensorBilinear(output_size=(3, 4), channels_first=False)(x, matrix)
    op = TransformTensorBilinear(output_size=(3, 4), channels_first=True)
    nchw = op(x.permute(0, 3, 1, 2), matrix.transpose(1, 2))
    torch.testing.assert_close(nchw.permute(0, 2, 3, 1), nhwc)
    torch.testing.assert_close(nhwc[0, 0, 0], 0.5 * (x[0, 1, 0] + x[0, 2, 0]) * 0.75
                               + 0.5 * (x[0, 1, 1] + x[0, 2, 1]) * 0.25)


# ---- TransformLandmarks ------------------------------------------------------------------------

def test_transform_landmarks_2d_and_3d() -> None:
    # (x, y) → (-y + 3, x + 4): a 90° turn then a shift.
    matrix = _matrix([[0, -1, 0, 3], [1, 0, 0, 4]])
    xy = torch.tensor([[[1.0, 2.0], [0.0, 0.0], [-3.0, 5.0]]])
    expected = torch.tensor([[[1.0, 5.0], [3.0, 4.0], [-2.0, 1.0]]])
    torch.testing.assert_close(TransformLandmarks()(xy, matrix), expected)
    xyz = torch.tensor([[[1.0, 2.0, 9.0]]])
    torch.testing.assert_close(TransformLandmarks()(xyz, matrix), torch.tensor([[[1.0, 5.0, 9.0]]]))


# ---- the published model's options -------------------------------------------------------------

def _model_path() -> Path:
    folder = os.environ.get("TF2TORCH_MEDIAPIPE_DIR")
    path = Path(folder) / _MODEL if folder else None
    if path is None or not path.exists():
        pytest.skip("face_landmark_with_attention.tflite not available (TF2TORCH_MEDIAPIPE_DIR)")
    return path


def test_published_model_options() -> None:
    from tf2torch.sources.tflite.reader import read_tflite_model

    ops = [op for op in read_tflite_model(_model_path()).subgraphs[0].operators if op.is_custom]
    by_name: dict[str, list] = {}
    for op in ops:
        by_name.setdefault(op.op, []).append(op)
    assert {k: len(v) for k, v in by_name.items()} == {
        "Landmarks2TransformMatrix": 3, "TransformTensorBilinear": 3, "TransformLandmarks": 5}
    assert all(op.version == 2 for op in ops)
    rotation_points = []
    for op in by_name["Landmarks2TransformMatrix"]:
        options = flexbuffer.loads(op.custom_options)
        assert (options["output_height"], options["output_width"]) == (16, 16)
        assert (options["scale_x"], options["scale_y"]) == (1.5, 1.5)
        assert options["target_rotation_radians"] == 0.0
        assert 70 <= len(options["subset_idxs"]) <= 80
        assert all(0 <= i < 468 for i in options["subset_idxs"])
        assert options["left_rotation_idx"] in options["subset_idxs"]
        rotation_points.append((options["left_rotation_idx"], options["right_rotation_idx"]))
    # Lips corners, then the two eyes' corners (face mesh indices).
    assert rotation_points == [(61, 291), (33, 133), (362, 263)]
    for op in by_name["TransformTensorBilinear"]:
        assert flexbuffer.loads(op.custom_options) == {"output_height": 16, "output_width": 16}
    assert all(not op.custom_options for op in by_name["TransformLandmarks"])
