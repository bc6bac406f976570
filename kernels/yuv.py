"""Front door for frame preprocessing: decoded 4:2:0 planes -> model input tensor.

Callers (the decode/inference code) should use `yuv_to_model_input` and never choose an
implementation themselves: CUDA planes go to the fused Triton kernel, CPU planes to the
torch reference, and both return the same thing (tested to within 1/255). Triton is
imported only when a CUDA tensor arrives, so CPU-only installs without triton work.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from kernels.yuv_params import YuvInputError, split_planes
from kernels.yuv_reference import (
    yuv_to_rgb_full_resolution_reference,
    yuv_to_rgb_resized_reference,
)

__all__ = [
    "YuvInputError",
    "yuv_to_model_input",
    "yuv_to_rgb_full_resolution_reference",
    "yuv_to_rgb_resized_reference",
]


def yuv_to_model_input(
    planes: Sequence[torch.Tensor], fmt: str, matrix: str, colour_range: str,
    out_size: Sequence[int], mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> torch.Tensor:
    """Colour-convert, bilinear-resize and normalise a batch of same-size 4:2:0 frames.

    planes: "nv12" -> (Y (N,H,W), UV (N,ceil(H/2),ceil(W/2),2) or (N,ceil(H/2),2*ceil(W/2)));
        "yuv420p" -> (Y, U, V) with U, V (N, ceil(H/2), ceil(W/2)). uint8, any row/batch
        strides (padded line sizes are fine); a missing batch axis means N = 1.
    matrix: "bt601" | "bt709"; colour_range: "limited"/"tv" | "full"/"pc"/"jpeg".
    out_size: (out_h, out_w).
    Returns float32 (N, 3, out_h, out_w) normalised as (x/255 - mean)/std when mean/std are
    given, else uint8 RGB (N, out_h, out_w, 3) -- the layout FrameClassifier.classify takes.
    """
    y, _, _ = split_planes(planes, fmt)
    if y.is_cuda:
        from kernels.yuv_triton import yuv_to_model_input_triton

        return yuv_to_model_input_triton(planes, fmt, matrix, colour_range, out_size, mean, std)
    if y.device.type != "cpu":
        raise YuvInputError(f"planes on {y.device} are not supported; use CUDA or CPU tensors")
    return yuv_to_rgb_resized_reference(planes, fmt, matrix, colour_range, out_size, mean, std)
