"""Runtime modules of MediaPipe's attention custom ops (converters: `mediapipe_ops`).

Torch only, plain-literal constructor arguments, like `modules.py`: `codegen.emit_code` copies
this file into standalone model files.
"""

from __future__ import annotations

import torch
from torch import nn


def _affine_rows(matrix: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per batch, the entries (m00, m01, m03, m10, m11, m13) of a (B, 4, 4) matrix as (B, 1)
    columns: the kernels read only the first two rows and meet z = 0, so m02, m12 drop out."""
    m = matrix.reshape(matrix.shape[0], 16)
    return tuple(m[:, i:i + 1] for i in (0, 1, 3, 4, 5, 7))


class LandmarksToTransformMatrix(nn.Module):
    """Landmarks2TransformMatrix v2 (source layout): (B, N, 3) landmarks → (B, 4, 4)."""

    def __init__(self, subset: list[int], left: int, right: int, target_rotation: float,
                 output_size: tuple[int, int], scale: tuple[float, float]) -> None:
        super().__init__()
        self.subset, self.left, self.right = list(subset), left, right
        self.target_rotation = target_rotation
        self.output_size, self.scale = tuple(output_size), tuple(scale)

    def forward(self, landmarks: torch.Tensor) -> torch.Tensor:
        x, y = landmarks[..., 0], landmarks[..., 1]
        rotation = self.target_rotation - torch.atan2(
            y[:, self.right] - y[:, self.left], x[:, self.right] - x[:, self.left])
        cos, sin = torch.cos(rotation)[:, None], torch.sin(rotation)[:, None]
        # Bounding box of the subset in the frame rotated by `rotation`...
        sx, sy = x[:, self.subset], y[:, self.subset]
        rx, ry = cos * sx - sin * sy, sin * sx + cos * sy
        rx_min, rx_max = rx.amin(1, keepdim=True), rx.amax(1, keepdim=True)
        ry_min, ry_max = ry.amin(1, keepdim=True), ry.amax(1, keepdim=True)
        width, height = rx_max - rx_min, ry_max - ry_min
        mid_x, mid_y = (rx_min + rx_max) / 2, (ry_min + ry_max) / 2
        # ...its centre rotated back (by -rotation, whose cosine/sine are cos, -sin).
        center_x = cos * mid_x + sin * mid_y
        center_y = -sin * mid_x + cos * mid_y
        # shift(center) · rotate(-rotation) · scale · shift(-output size / 2)
        out_h, out_w = self.output_size
        scale_x = self.scale[0] * width / out_w
        scale_y = self.scale[1] * height / out_h
        m00, m01 = cos * scale_x, sin * scale_y
        m10, m11 = -sin * scale_x, cos * scale_y
        m03 = m00 * (-out_w / 2) + m01 * (-out_h / 2) + center_x
        m13 = m10 * (-out_w / 2) + m11 * (-out_h / 2) + center_y
        zero, one = torch.zeros_like(m00), torch.ones_like(m00)
        rows = (m00, m01, zero, m03, m10, m11, zero, m13,
                zero, zero, one, zero, zero, zero, zero, one)
        return torch.cat(rows, dim=1).reshape(-1, 4, 4)


class TransformTensorBilinear(nn.Module):
    """TransformTensorBilinear v2: feature map (B, H, W, C), or (B, C, H, W) when
    `channels_first`, and a (B, 4, 4) matrix → the (out_h, out_w) crop, same layout.

    In channels-first the lowering hands the matrix over with its last two axes swapped too
    (it moves axis -1 of every rank >= 3 input to axis 1), so it is transposed back here.
    """

    def __init__(self, output_size: tuple[int, int], channels_first: bool) -> None:
        super().__init__()
        self.output_size, self.channels_first = tuple(output_size), channels_first

    def forward(self, features: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
        if self.channels_first:
            matrix = matrix.transpose(1, 2)
        else:
            features = features.permute(0, 3, 1, 2)
        batch, channels, height, width = features.shape
        out_h, out_w = self.output_size
        m00, m01, m03, m10, m11, m13 = _affine_rows(matrix)
        # Align corners: the kernel samples at T · (x + 0.5, y + 0.5) - 0.5.
        m03 = m03 + (m00 * 0.5 + m01 * 0.5 - 0.5)
        m13 = m13 + (m10 * 0.5 + m11 * 0.5 - 0.5)
        ys, xs = torch.meshgrid(
            torch.arange(out_h, dtype=features.dtype, device=features.device),
            torch.arange(out_w, dtype=features.dtype, device=features.device), indexing="ij")
        xs, ys = xs.reshape(1, -1), ys.reshape(1, -1)
        tx = m00 * xs + m01 * ys + m03  # (B, out_h * out_w)
        ty = m10 * xs + m11 * ys + m13
        # A sample outside [0, size - 1] is zero; inside, a corner past the edge reads zero.
        inside = (tx >= 0) & (tx <= width - 1) & (ty >= 0) & (ty <= height - 1)
        x0, y0 = torch.floor(tx), torch.floor(ty)
        fx, fy = tx - x0, ty - y0
        flat = features.reshape(batch, channels, height * width)

        def corner(row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
            valid = inside & (row >= 0) & (row < height) & (col >= 0) & (col < width)
            index = (row.clamp(0, height - 1) * width + col.clamp(0, width - 1)).long()
            picked = torch.gather(flat, 2, index[:, None, :].expand(batch, channels, -1))
            return picked * valid[:, None, :].to(features.dtype)

        fx, fy = fx[:, None, :], fy[:, None, :]
        upper = (1 - fx) * corner(y0, x0) + fx * corner(y0, x0 + 1)
        lower = (1 - fx) * corner(y0 + 1, x0) + fx * corner(y0 + 1, x0 + 1)
        out = (fy * lower + (1 - fy) * upper).reshape(batch, channels, out_h, out_w)
        return out if self.channels_first else out.permute(0, 2, 3, 1)


class TransformLandmarks(nn.Module):
    """TransformLandmarks v2 (source layout): (B, N, D) landmarks, D = 2 or 3, and a (B, 4, 4)
    matrix → (x, y) mapped by the matrix's first two rows; z passes through."""

    def forward(self, landmarks: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
        m00, m01, m03, m10, m11, m13 = _affine_rows(matrix)
        x, y = landmarks[..., 0], landmarks[..., 1]
        mapped = [m00 * x + m01 * y + m03, m10 * x + m11 * y + m13]
        return torch.stack(mapped + list(landmarks.unbind(-1)[2:]), dim=-1)
