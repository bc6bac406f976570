"""Triton kernel: 4:2:0 YUV planes -> resized, normalised model input in one pass.

Why one kernel: on a GPU the naive chain (upsample chroma, convert to RGB, interpolate,
normalise) writes and re-reads full-resolution float images several times; here every
output pixel reads its taps' luma and chroma samples (2 x 2 taps for bilinear, the shrink
ratio's triangle with antialias) and writes its 3 output values once.
The semantics are those of `kernels.yuv_reference` (which the tests hold this to); this
module imports triton at import time, so only import it where triton exists (the
dispatcher in `kernels.yuv` does so lazily, for CUDA tensors only).

Grid: axis 0 = blocks of BLOCK output pixels (row-major over out_h x out_w), axis 1 = frame
in the batch. The taps come from `resize_taps` tables (first source index and weights per
output row and column), the same tables the torch reference reads. Offsets into the planes use int64 for the batch term so large batches of
padded 4K frames cannot overflow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
import triton
import triton.language as tl

from kernels.yuv_params import (
    SAMPLE_SCALES,
    YuvInputError,
    colour_coefficients,
    normalisation,
    output_size,
    resize_taps,
    split_planes,
)

DEFAULT_BLOCK = 256
INTERPRETER_MAX_BLOCK = 1 << 16
"""The interpreter pays per program and per op, not per element: one big block per frame
makes it hundreds of times faster on CPU (the kernel's result does not depend on BLOCK)."""


@triton.jit
def _yuv_to_model_input_kernel(
    y_ptr,
    u_ptr,
    v_ptr,
    out_ptr,
    row_first_ptr,
    row_weight_ptr,
    col_first_ptr,
    col_weight_ptr,
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
    sample_scale,
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
    TAPS_H: tl.constexpr,
    TAPS_W: tl.constexpr,
    NORMALISE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """One program = BLOCK output pixels of one frame; see the module docstring for the grid."""
    frame = tl.program_id(1).to(tl.int64)
    pixel = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    n_out = out_h * out_w
    mask = pixel < n_out
    out_row = tl.where(mask, pixel // out_w, 0)
    out_col = tl.where(mask, pixel % out_w, 0)
    row_first = tl.load(row_first_ptr + out_row)
    col_first = tl.load(col_first_ptr + out_col)
    red = tl.zeros((BLOCK,), tl.float32)
    green = tl.zeros((BLOCK,), tl.float32)
    blue = tl.zeros((BLOCK,), tl.float32)
    for row_tap in range(TAPS_H):
        row = tl.minimum(row_first + row_tap, in_h - 1)
        row_weight = tl.load(row_weight_ptr + out_row * TAPS_H + row_tap)
        for col_tap in range(TAPS_W):
            col = tl.minimum(col_first + col_tap, in_w - 1)
            weight = row_weight * tl.load(col_weight_ptr + out_col * TAPS_W + col_tap)
            # Chroma: the nearest 4:2:0 sample (row // 2, col // 2) of this luma tap.
            luma = tl.load(y_ptr + frame * y_sb + row * y_sr + col * y_sc, mask=mask, other=0)
            cb = tl.load(
                u_ptr + frame * u_sb + (row // 2) * u_sr + (col // 2) * u_sc, mask=mask, other=0
            )
            cr = tl.load(
                v_ptr + frame * v_sb + (row // 2) * v_sr + (col // 2) * v_sc, mask=mask, other=0
            )
            luma = (luma.to(tl.float32) * sample_scale - y_offset) * y_scale
            cb = cb.to(tl.float32) * sample_scale - 128.0
            cr = cr.to(tl.float32) * sample_scale - 128.0
            # Clamp each tap before blending: the resize works on a valid 0..255 RGB image.
            red += tl.minimum(tl.maximum(luma + r_cr * cr, 0.0), 255.0) * weight
            green += tl.minimum(tl.maximum(luma + g_cb * cb + g_cr * cr, 0.0), 255.0) * weight
            blue += tl.minimum(tl.maximum(luma + b_cb * cb, 0.0), 255.0) * weight

    if NORMALISE:
        # float32 NCHW
        out_base = out_ptr + frame * 3 * n_out + pixel
        tl.store(out_base, (red / 255.0 - mean_r) / std_r, mask=mask)
        tl.store(out_base + n_out, (green / 255.0 - mean_g) / std_g, mask=mask)
        tl.store(out_base + 2 * n_out, (blue / 255.0 - mean_b) / std_b, mask=mask)
    else:
        # uint8 NHWC, rounded half up
        out_base = out_ptr + frame * 3 * n_out + pixel * 3
        tl.store(out_base, _to_level(red), mask=mask)
        tl.store(out_base + 1, _to_level(green), mask=mask)
        tl.store(out_base + 2, _to_level(blue), mask=mask)


@triton.jit
def _to_level(value):
    return tl.minimum(tl.maximum(tl.floor(value + 0.5), 0.0), 255.0).to(tl.uint8)


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
    antialias: bool = False,
    block: int | None = None,
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
    rows, cols = resize_taps(in_h, out_h, antialias), resize_taps(in_w, out_w, antialias)
    tables = [t.to(y.device) for t in (rows.first, rows.weights, cols.first, cols.weights)]
    if norm is None:
        out = torch.empty((batch, out_h, out_w, 3), dtype=torch.uint8, device=y.device)
        mean_t, std_t = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    else:
        out = torch.empty((batch, 3, out_h, out_w), dtype=torch.float32, device=y.device)
        mean_t, std_t = norm.mean, norm.std
    if block is None:
        block = DEFAULT_BLOCK
        if not y.is_cuda:
            block = min(triton.next_power_of_2(out_h * out_w), INTERPRETER_MAX_BLOCK)
    grid = (triton.cdiv(out_h * out_w, block), batch)
    # Triton launches on the *current* device: make it the planes' device (cuda:1 etc.).
    with torch.cuda.device(y.device) if y.is_cuda else contextlib.nullcontext():
        _yuv_to_model_input_kernel[grid](
            y,
            u,
            v,
            out,
            *(t.contiguous() for t in tables),
            *y.stride(),
            *u.stride(),
            *v.stride(),
            in_h,
            in_w,
            out_h,
            out_w,
            SAMPLE_SCALES[str(fmt).lower()],
            coeffs.y_offset,
            coeffs.y_scale,
            coeffs.r_cr,
            coeffs.g_cb,
            coeffs.g_cr,
            coeffs.b_cb,
            *mean_t,
            *std_t,
            TAPS_H=rows.taps,
            TAPS_W=cols.taps,
            NORMALISE=norm is not None,
            BLOCK=block,
        )
    return out
