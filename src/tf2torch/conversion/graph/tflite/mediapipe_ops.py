"""MediaPipe's attention custom ops (face_landmark_with_attention): converters (modules in
`mediapipe_modules`).

Semantics follow MediaPipe's CPU kernels (mediapipe/util/tflite/operations), version 2 only:
- Landmarks2TransformMatrix: landmarks (B, N, 3) → the (B, 4, 4) matrix taking a crop's pixel
  (x, y, 0, 1) to input coordinates, for a crop around a landmark subset aligned with the line
  between two landmarks;
- TransformTensorBilinear: samples a feature map at the matrix-mapped crop pixels (bilinear,
  pixel centres at +0.5, zero where the sample falls outside the map);
- TransformLandmarks: applies the matrix's first two rows to (x, y) landmarks.
Options are FlexBuffers maps, decoded at conversion time into plain constructor arguments.
"""

from __future__ import annotations

from tf2torch.conversion.graph.registry import CF, SOURCE, LowerContext, Lowered, ModuleSpec
from tf2torch.conversion.graph.tflite.common import output_shape
from tf2torch.sources.ir import Node
from tf2torch.sources.tflite import flexbuffer

_MODULES = "tf2torch.conversion.graph.tflite.mediapipe_modules:"


def _spec(cls: str, **kwargs) -> ModuleSpec:
    return ModuleSpec(_MODULES + cls, kwargs)


def _options(node: Node) -> dict:
    raw = bytes.fromhex(node.attrs.get("custom_options", ""))
    options = flexbuffer.loads(raw) if raw else {}
    if not isinstance(options, dict):
        raise ValueError("custom options are not a FlexBuffers map")
    return options


def _check_version(node: Node) -> None:
    # Version 1 of these ops has other inputs and semantics (4-D tensors, other options).
    version = node.attrs.get("tflite_version", 1)
    if version != 2:
        raise ValueError(f"only version 2 is supported, not {version}")


def convert_landmarks_to_transform_matrix(node: Node, ctx: LowerContext) -> Lowered:
    _check_version(node)
    options = _options(node)
    return Lowered(_spec(
        "LandmarksToTransformMatrix",
        subset=[int(i) for i in options["subset_idxs"]],
        left=int(options["left_rotation_idx"]), right=int(options["right_rotation_idx"]),
        target_rotation=float(options["target_rotation_radians"]),
        output_size=(int(options["output_height"]), int(options["output_width"])),
        scale=(float(options["scale_x"]), float(options["scale_y"]))), SOURCE)


def convert_transform_tensor_bilinear(node: Node, ctx: LowerContext) -> Lowered:
    """Runs channels-first: its feature map comes from, and goes to, convolutions."""
    _check_version(node)
    # The kernel sizes its output from the output tensor; the options repeat it.
    out_h, out_w = output_shape(node)[1:3]
    return Lowered(_spec("TransformTensorBilinear", output_size=(out_h, out_w),
                         channels_first=True), CF)


def convert_transform_landmarks(node: Node, ctx: LowerContext) -> Lowered:
    _check_version(node)
    return Lowered(_spec("TransformLandmarks"), SOURCE)


CONVERTERS = {
    "Landmarks2TransformMatrix": convert_landmarks_to_transform_matrix,
    "TransformTensorBilinear": convert_transform_tensor_bilinear,
    "TransformLandmarks": convert_transform_landmarks,
}
