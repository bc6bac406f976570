"""Rotated square crops of image batches, and the maps between crop and image coordinates.

Both networks see a square crop: the palm detector a letterbox of the whole frame (an unrotated
square on its long side, zeros outside), the landmark model a rotated square around one hand.
One bilinear `grid_sample` does both, so resizing, rotation and padding are a single pass and
the coordinate maps below are exactly its inverse. Boxes are (x_centre, y_centre, size,
rotation) in image pixels; the crop's "up" is the image direction R(rotation) @ (0, -1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def letterbox_squares(height: int, width: int, count: int) -> torch.Tensor:
    """(count, 4) squares covering whole frames, centred, on the long side, unrotated."""
    square = torch.tensor([width / 2, height / 2, float(max(height, width)), 0.0])
    return square.expand(count, 4).clone()


def crop_squares(images: torch.Tensor, squares: torch.Tensor, size: int,
                 padding_mode: str = "zeros") -> torch.Tensor:
    """images (M, C, H, W) float, squares (M, 4) -> (M, C, size, size) crops, channels_last.

    Output pixel centres sample the image bilinearly (align_corners=False, as OpenCV's warp
    with pixel centres); outside the image, `padding_mode` ("zeros" or "border").
    """
    count, _, height, width = images.shape
    x_c, y_c, side, rotation = squares.to(images.dtype).unbind(1)
    cos, sin = torch.cos(rotation), torch.sin(rotation)
    theta = torch.stack([
        torch.stack([cos * side / width, -sin * side / width, 2 * x_c / width - 1], dim=1),
        torch.stack([sin * side / height, cos * side / height, 2 * y_c / height - 1], dim=1),
    ], dim=1)
    grid = F.affine_grid(theta, [count, images.shape[1], size, size], align_corners=False)
    crops = F.grid_sample(images, grid, mode="bilinear", padding_mode=padding_mode,
                          align_corners=False)
    return crops.contiguous(memory_format=torch.channels_last)


def crop_to_image(points: torch.Tensor, squares: torch.Tensor, size: int) -> torch.Tensor:
    """Points (M, P, 2+) in crop pixels of `size` -> image pixels (extra columns, e.g. z, are
    scaled by the crop's zoom only). squares: (M, 4), the ones the crops were cut from."""
    x_c, y_c, side, rotation = squares.to(points.dtype).unbind(1)
    scale = (side / size).view(-1, 1)
    offset = points[..., :2] / size - 0.5  # in crop widths, centred
    cos, sin = torch.cos(rotation).view(-1, 1), torch.sin(rotation).view(-1, 1)
    x = x_c.view(-1, 1) + side.view(-1, 1) * (cos * offset[..., 0] - sin * offset[..., 1])
    y = y_c.view(-1, 1) + side.view(-1, 1) * (sin * offset[..., 0] + cos * offset[..., 1])
    rest = points[..., 2:] * scale.unsqueeze(-1)
    return torch.cat([x.unsqueeze(-1), y.unsqueeze(-1), rest], dim=-1)
