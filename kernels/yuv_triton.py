"""Triton kernel: 4:2:0 YUV planes -> resized, normalised model input in one pass.

Why one kernel: on a GPU the naive chain (upsample chroma, convert to RGB, interpolate,
normalise) writes and re-reads full-resolution float images several times; here every
output pixel reads its 4 luma and 4+4 chroma bytes and writes its 3 output values once.
The semantics are those of `kernels.yuv_reference` (which the tests hold this to); this
module imports triton at import time, so only import it where triton exists (the
dispatcher in `kernels.yuv` does so lazily, for CUDA tensors only).

Grid: axis 0 = blocks of BLOCK output pixels (row-major over out_h x out_w), axis 1 = frame
in the batch. Offsets into the planes use int64 for the batch term so large batches of
padded 4K frames cannot overflow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
import triton
import triton.language as tl

from kernels.yuv_params import (
    YuvInputError,
    colour_coefficients,
    normalisation,
    output_size,
    split_planes,
)

DEFAULT_BLOCK = 256


@triton.jit
def _yuv_to_model_input_kernel(
    y_ptr,
    u_ptr,
    v_ptr,
    out_ptr,
    y_sb,
    y_sr,
    y_sc,
    u_sb,
    u_sr,
    u_sc,
    v_sb,
    v_sr,
    v_sc,
    in_h,
    in_w,
    out_h,
    out_w,
    scale_h,
    scale_w,
    y_offset,
    y_scale,
    r_cr,
    g_cb,
    g_cr,
    b_cb,
    mean_r,
    mean_g,
    mean_b,
    std_r,
    std_g,
    std_b,
    NORMALISE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """One program = BLOCK output pixels of one frame; see the module docstring for the grid."""
    frame = tl.program_id(1).to(tl.int64)
    pixel = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    n_out = out_h * out_w
    mask = pixel < n_out
    out_row = pixel // out_w
    out_col = pixel % out_w

    # Half-pixel centres, clamped at 0: torch's bilinear with align_corners=False.
    src_row = tl.maximum((out_row.to(tl.float32) + 0.5) * scale_h - 0.5, 0.0)
    src_col = tl.maximum((out_col.to(tl.float32) + 0.5) * scale_w - 0.5, 0.0)
    row0 = tl.minimum(tl.floor(src_row).to(tl.int32), in_h - 1)
    col0 = tl.minimum(tl.floor(src_col).to(tl.int32), in_w - 1)
    row1 = tl.minimum(row0 + 1, in_h - 1)
    col1 = tl.minimum(col0 + 1, in_w - 1)
    w_row1 = src_row - row0.to(tl.float32)
    w_col1 = src_col - col0.to(tl.float32)

    # The 4 bilinear taps as a second axis: tap t uses row (t // 2) and column (t % 2).
    tap = tl.arange(0, 4)[None, :]
    row = tl.where(tap >= 2, row1[:, None], row0[:, None])
    col = tl.where((tap % 2) == 1, col1[:, None], col0[:, None])
    w_row = tl.where(tap >= 2, w_row1[:, None], 1.0 - w_row1[:, None])
    w_col = tl.where((tap % 2) == 1, w_col1[:, None], 1.0 - w_col1[:, None])
    weight = w_row * w_col
    tap_mask = mask[:, None] & (tap < 4)  # (tap < 4) only broadcasts the mask to (BLOCK, 4)

    # Chroma: nearest 4:2:0 sample (row // 2, col // 2) for every luma tap.
    luma = tl.load(y_ptr + frame * y_sb + row * y_sr + col * y_sc, mask=tap_mask, other=0)
    cb = tl.load(
        u_ptr + frame * u_sb + (row // 2) * u_sr + (col // 2) * u_sc, mask=tap_mask, other=128
    )
    cr = tl.load(
        v_ptr + frame * v_sb + (row // 2) * v_sr + (col // 2) * v_sc, mask=tap_mask, other=128
    )
    luma = (luma.to(tl.float32) - y_offset) * y_scale
    cb = cb.to(tl.float32) - 128.0
    cr = cr.to(tl.float32) - 128.0
    # Clamp each tap before blending: the resize works on a valid 0..255 RGB image.
    red = tl.sum(tl.minimum(tl.maximum(luma + r_cr * cr, 0.0), 255.0) * weight, axis=1)
    green = tl.sum(
        tl.minimum(tl.maximum(luma + g_cb * cb + g_cr * cr, 0.0), 255.0) * weight, axis=1
    )
    blue = tl.sum(tl.minimum(tl.maximum(luma + b_cb * cb, 0.0), 255.0) * weight, axis=1)

    if NORMALISE:
        # float32 NCHW
        out_base = out_ptr + frame * 3 * n_out + pixel
        tl.store(out_base, (red / 255.0 - mean_r) / std_r, mask=mask)
        tl.store(out_base + n_out, (green / 255.0 - mean_g) / std_g, mask=mask)
        tl.store(out_base + 2 * n_out, (blue / 255.0 - mean_b) / std_b, mask=mask)
    else:
        # uint8 NHWC, rounded half up
        out_base = out_ptr + frame * 3 * n_out + pixel * 3
        tl.store(out_base, tl.minimum(tl.floor(red + 0.5), 255.0).to(tl.uint8), mask=mask)
        tl.store(out_base + 1, tl.minimum(tl.floor(green + 0.5), 255.0).to(tl.uint8), mask=mask)
        tl.store(out_base + 2, tl.minimum(tl.floor(blue + 0.5), 255.0).to(tl.uint8), mask=mask)


def kernel_is_interpreted() -> bool:
    """True when this process imported triton with TRITON_INTERPRET=1 set."""
    return type(_yuv_to_model_input_kernel).__name__ == "InterpretedFunction"


def yuv_to_model_input_triton(
    planes: Sequence[torch.Tensor],
    fmt: str,
    matrix: str,
    colour_range: str,
    out_size: Sequence[int],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    *,
    block: int = DEFAULT_BLOCK,
) -> torch.Tensor:
    """Same contract as `yuv_to_rgb_resized_reference`, computed by one Triton launch.

    Planes must be on CUDA, unless the process imported triton with TRITON_INTERPRET=1: then
    the kernel runs on CPU tensors through Triton's interpreter (slow; for tests only).
    """
    y, u, v = split_planes(planes, fmt)
    if not y.is_cuda and not kernel_is_interpreted():
        raise YuvInputError(
            f"the Triton kernel needs CUDA planes, got {y.device}; use the reference"
        )
    coeffs = colour_coefficients(matrix, colour_range)
    norm = normalisation(mean, std)
    out_h, out_w = output_size(out_size)
    batch, in_h, in_w = y.shape
    if norm is None:
        out = torch.empty((batch, out_h, out_w, 3), dtype=torch.uint8, device=y.device)
        mean_t, std_t = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    else:
        out = torch.empty((batch, 3, out_h, out_w), dtype=torch.float32, device=y.device)
        mean_t, std_t = norm.mean, norm.std
    grid = (triton.cdiv(out_h * out_w, block), batch)
    # Triton launches on the *current* device: make it the planes' device (cuda:1 etc.).
    with torch.cuda.device(y.device) if y.is_cuda else contextlib.nullcontext():
        _yuv_to_model_input_kernel[grid](
            y,
            u,
            v,
            out,
            *y.stride(),
            *u.stride(),
            *v.stride(),
            in_h,
            in_w,
            out_h,
            out_w,
            in_h / out_h,
            in_w / out_w,
            coeffs.y_offset,
            coeffs.y_scale,
            coeffs.r_cr,
            coeffs.g_cb,
            coeffs.g_cr,
            coeffs.b_cb,
            *mean_t,
            *std_t,
            NORMALISE=norm is not None,
            BLOCK=block,
        )
    return out
