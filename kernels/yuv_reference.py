"""Plain-torch twin of the Triton YUV -> model-input kernel; also the engine's CPU path.

Semantics (the Triton kernel implements exactly these, see kernels/README.md):

1. Colour: every *luma* pixel (x, y) is converted to RGB with the chroma sample at
   (x // 2, y // 2) (nearest / replicated 4:2:0 upsampling), clamped to [0, 255] and kept in
   float (not rounded to integers).
2. Resize: bilinear on that full-resolution float RGB image with half-pixel centres, i.e.
   torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False):
   src = max(0, (dst + 0.5) * in/out - 0.5), taps floor(src) and min(floor(src)+1, in-1).
3. Output: uint8 NHWC rounded half-up (floor(v + 0.5)), or float32 NCHW (v/255 - mean)/std.

Instead of converting the whole frame and then calling interpolate, this gathers only the
four source pixels each output pixel needs: a 1080p frame resized to 224 touches 200 k
pixels instead of 2 M, which makes it fast enough to be the CPU production path. The
test suite holds it equal to the convert-everything-then-interpolate definition
(`yuv_to_rgb_full_resolution_reference` + F.interpolate).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from kernels.yuv_params import (
    ColourCoefficients,
    Normalisation,
    colour_coefficients,
    normalisation,
    output_size,
    split_planes,
)


def yuv_to_rgb_resized_reference(
    planes: Sequence[torch.Tensor],
    fmt: str,
    matrix: str,
    colour_range: str,
    out_size: Sequence[int],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> torch.Tensor:
    """Convert a batch of 4:2:0 frames to model input with plain torch ops (any device).

    Returns float32 (N, 3, out_h, out_w) when mean/std are given, else uint8
    (N, out_h, out_w, 3) RGB.
    """
    y, u, v = split_planes(planes, fmt)
    coeffs = colour_coefficients(matrix, colour_range)
    norm = normalisation(mean, std)
    out_h, out_w = output_size(out_size)
    row_low, row_high, row_w_high = _source_taps(y.shape[1], out_h, y.device)
    col_low, col_high, col_w_high = _source_taps(y.shape[2], out_w, y.device)
    # Only the 2x2 neighbours of each output pixel, never the whole frame. The 4 taps form a
    # leading axis, (tap row, tap col, out_h, out_w), so each plane is gathered once and the
    # blend is a sum over a short outer axis (vectorises well on CPU).
    row_index = torch.stack((row_low, row_high))[:, None, :, None]
    col_index = torch.stack((col_low, col_high))[None, :, None, :]
    row_weight = torch.stack((1.0 - row_w_high, row_w_high))[:, None, :, None]
    col_weight = torch.stack((1.0 - col_w_high, col_w_high))[None, :, None, :]
    weight = (row_weight * col_weight).reshape(4, out_h, out_w)
    channels = _rgb_at(y, u, v, row_index, col_index, coeffs)  # 3 x (N, 2, 2, out_h, out_w)
    rgb = torch.stack(
        [(c.reshape(-1, 4, out_h, out_w) * weight).sum(dim=1) for c in channels], dim=-1
    )
    return _finish(rgb, norm)


def yuv_to_rgb_full_resolution_reference(
    planes: Sequence[torch.Tensor], fmt: str, matrix: str, colour_range: str
) -> torch.Tensor:
    """Float32 (N, 3, H, W) RGB in 0..255, unrounded: step 1 of the semantics, whole frame.

    Kept as the executable definition the fast path is tested against; interpolating this
    with F.interpolate(bilinear, align_corners=False) must equal the resized reference.
    """
    y, u, v = split_planes(planes, fmt)
    coeffs = colour_coefficients(matrix, colour_range)
    rows = torch.arange(y.shape[1], device=y.device)
    cols = torch.arange(y.shape[2], device=y.device)
    return torch.stack(_rgb_at(y, u, v, rows[:, None], cols[None, :], coeffs), dim=1)


def _source_taps(in_len: int, out_len: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Half-pixel-centre taps (low index, high index, weight of high) like torch's bilinear.

    The scale is a float32 in/out ratio, the same number the kernel receives, so both round
    the source coordinate identically.
    """
    scale = torch.tensor(in_len / out_len, dtype=torch.float32)
    dst = torch.arange(out_len, dtype=torch.float32)
    src = ((dst + 0.5) * scale - 0.5).clamp_min(0.0)
    low = src.floor().to(torch.int64).clamp_max(in_len - 1)
    high = (low + 1).clamp_max(in_len - 1)
    weight_high = src - low.to(torch.float32)
    return low.to(device), high.to(device), weight_high.to(device)


def _rgb_at(
    y: torch.Tensor,
    u: torch.Tensor,
    v: torch.Tensor,
    row_index: torch.Tensor,
    col_index: torch.Tensor,
    coeffs: ColourCoefficients,
) -> torch.Tensor:
    """(R, G, B), each (N, *index shape) float clamped to [0, 255], at broadcast luma indices."""
    chroma_rows, chroma_cols = row_index // 2, col_index // 2
    luma = (
        _gather(y, row_index, col_index)
        .to(torch.float32)
        .sub_(coeffs.y_offset)
        .mul_(coeffs.y_scale)
    )
    cb = _gather(u, chroma_rows, chroma_cols).to(torch.float32).sub_(128.0)
    cr = _gather(v, chroma_rows, chroma_cols).to(torch.float32).sub_(128.0)
    red = torch.add(luma, cr, alpha=coeffs.r_cr)
    green = torch.add(luma, cb, alpha=coeffs.g_cb).add_(cr, alpha=coeffs.g_cr)
    blue = luma.add_(cb, alpha=coeffs.b_cb)
    return red.clamp_(0.0, 255.0), green.clamp_(0.0, 255.0), blue.clamp_(0.0, 255.0)


def _gather(plane: torch.Tensor, row_index: torch.Tensor, col_index: torch.Tensor) -> torch.Tensor:
    """plane[:, row_index, col_index] via flat offsets, like the kernel's pointer arithmetic.

    One index_select over a per-frame flat view of the (padded) storage is several times
    faster on CPU than advanced indexing with broadcast index tensors.
    """
    batch_stride, row_stride, col_stride = plane.stride()
    span = (plane.shape[1] - 1) * row_stride + (plane.shape[2] - 1) * col_stride + 1
    flat = plane.as_strided((plane.shape[0], span), (batch_stride, 1))
    offsets = row_index * row_stride + col_index * col_stride
    return flat.index_select(1, offsets.reshape(-1)).view(plane.shape[0], *offsets.shape)


def _finish(rgb: torch.Tensor, norm: Normalisation | None) -> torch.Tensor:
    """NHWC float 0..255 -> uint8 NHWC (round half up) or normalised float32 NCHW."""
    if norm is None:
        return torch.floor(rgb + 0.5).clamp_(0.0, 255.0).to(torch.uint8).contiguous()
    mean = torch.tensor(norm.mean, dtype=torch.float32, device=rgb.device)
    std = torch.tensor(norm.std, dtype=torch.float32, device=rgb.device)
    return ((rgb / 255.0 - mean) / std).permute(0, 3, 1, 2).contiguous()
