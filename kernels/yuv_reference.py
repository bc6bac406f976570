"""Plain-torch twin of the Triton YUV -> model-input kernel; also the engine's CPU path.

Semantics (the Triton kernel implements exactly these, see kernels/README.md):

1. Colour: every *luma* pixel (x, y) is converted to RGB with the chroma sample at
   (x // 2, y // 2) (nearest / replicated 4:2:0 upsampling), clamped to [0, 255] and kept in
   float (not rounded to integers).
2. Resize: bilinear on that full-resolution float RGB image with half-pixel centres, i.e.
   torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=...):
   the tap tables of `kernels.yuv_params.resize_taps` (2 taps without antialias; a triangle
   as wide as the shrink ratio with it).
3. Output: uint8 NHWC rounded half-up (floor(v + 0.5)), or float32 NCHW (v/255 - mean)/std.

Instead of converting the whole frame and then calling interpolate, this gathers only the
source pixels each output pixel needs (4 without antialias: a 1080p frame resized to 224
touches 200 k pixels instead of 2 M). The
test suite holds it equal to the convert-everything-then-interpolate definition
(`yuv_to_rgb_full_resolution_reference` + F.interpolate).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from kernels.yuv_params import (
    SAMPLE_SCALES,
    ColourCoefficients,
    Normalisation,
    ResizeTaps,
    colour_coefficients,
    normalisation,
    output_size,
    resize_taps,
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
    *,
    antialias: bool = False,
) -> torch.Tensor:
    """Convert a batch of 4:2:0 frames to model input with plain torch ops (any device).

    Returns float32 (N, 3, out_h, out_w) when mean/std are given, else uint8
    (N, out_h, out_w, 3) RGB. `antialias` widens the filter when shrinking (module docstring).
    """
    y, u, v = split_planes(planes, fmt)
    coeffs = colour_coefficients(matrix, colour_range)
    norm = normalisation(mean, std)
    out_h, out_w = output_size(out_size)
    rows = resize_taps(y.shape[1], out_h, antialias)
    cols = resize_taps(y.shape[2], out_w, antialias)
    scale = SAMPLE_SCALES[str(fmt).lower()]
    # Only the taps of each output pixel, never the whole frame: one gather per (row tap,
    # column tap) pair, blended into a running sum, as the kernel does.
    rgb = torch.zeros((y.shape[0], out_h, out_w, 3), dtype=torch.float32, device=y.device)
    for row_tap in range(rows.taps):
        row_index = _tap_index(rows, row_tap, y.shape[1], y.device)[:, None]
        row_weight = rows.weights[:, row_tap].to(y.device)[:, None]
        for col_tap in range(cols.taps):
            col_index = _tap_index(cols, col_tap, y.shape[2], y.device)[None, :]
            weight = row_weight * cols.weights[:, col_tap].to(y.device)[None, :]
            channels = _rgb_at(y, u, v, row_index, col_index, coeffs, scale)
            rgb += torch.stack(channels, dim=-1) * weight[None, :, :, None]
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
    scale = SAMPLE_SCALES[str(fmt).lower()]
    return torch.stack(_rgb_at(y, u, v, rows[:, None], cols[None, :], coeffs, scale), dim=1)


def _tap_index(taps: ResizeTaps, tap: int, in_len: int, device: torch.device) -> torch.Tensor:
    """Source index of `tap` for every output index, clamped to the input like the kernel."""
    return (taps.first.to(torch.int64) + tap).clamp_max(in_len - 1).to(device)


def _rgb_at(
    y: torch.Tensor,
    u: torch.Tensor,
    v: torch.Tensor,
    row_index: torch.Tensor,
    col_index: torch.Tensor,
    coeffs: ColourCoefficients,
    sample_scale: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(R, G, B), each (N, *index shape) float clamped to [0, 255], at broadcast luma indices."""
    chroma_rows, chroma_cols = row_index // 2, col_index // 2
    luma = (
        _gather(y, row_index, col_index)
        .to(torch.float32)
        .mul_(sample_scale)
        .sub_(coeffs.y_offset)
        .mul_(coeffs.y_scale)
    )
    cb = _gather(u, chroma_rows, chroma_cols).to(torch.float32).mul_(sample_scale).sub_(128.0)
    cr = _gather(v, chroma_rows, chroma_cols).to(torch.float32).mul_(sample_scale).sub_(128.0)
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
