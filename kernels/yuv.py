"""Front door for frame preprocessing: decoded 4:2:0 planes -> model input tensor.

Callers (the decode/inference code) should use `yuv_to_model_input` and never choose an
implementation themselves: CUDA planes go to the fused Triton kernel, CPU planes to the
torch reference, and both return the same thing (tested to within 1/255). Triton is
imported only when a CUDA tensor arrives, so CPU-only installs without triton work.

One exception keeps the GPU path testable without a GPU: when the process runs Triton's
interpreter (TRITON_INTERPRET=1, Triton's own switch, read here because it decides which
implementation can run), CPU planes go through the kernel too, so a CPU test exercises the
very code a GPU node runs.
"""

from __future__ import annotations

import os
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
    *,
    antialias: bool = False,
) -> torch.Tensor:
    """Colour-convert, bilinear-resize and normalise a batch of same-size 4:2:0 frames.

    planes: "nv12" -> (Y (N,H,W), UV (N,ceil(H/2),ceil(W/2),2) or (N,ceil(H/2),2*ceil(W/2)));
        "yuv420p" -> (Y, U, V) with U, V (N, ceil(H/2), ceil(W/2)); uint8. "p010" -> like
        nv12 but uint16 (10-bit samples in the high bits). Any row/batch strides (padded
        line sizes are fine); a missing batch axis means N = 1.
    matrix: "bt601" | "bt709" | "bt2020"; colour_range: "limited"/"tv" | "full"/"pc"/"jpeg".
    out_size: (out_h, out_w). antialias: widen the filter when shrinking (torch's and
    swscale's BILINEAR behaviour), instead of sampling 2 x 2 taps.
    Returns float32 (N, 3, out_h, out_w) normalised as (x/255 - mean)/std when mean/std are
    given, else uint8 RGB (N, out_h, out_w, 3) -- the layout FrameClassifier.classify takes.
    """
    y, _, _ = split_planes(planes, fmt)
    if y.device.type not in ("cuda", "cpu"):
        raise YuvInputError(f"planes on {y.device} are not supported; use CUDA or CPU tensors")
    if y.is_cuda or triton_interpreter_requested():
        from kernels.yuv_triton import yuv_to_model_input_triton

        return yuv_to_model_input_triton(
            planes, fmt, matrix, colour_range, out_size, mean, std, antialias=antialias
        )
    return yuv_to_rgb_resized_reference(
        planes, fmt, matrix, colour_range, out_size, mean, std, antialias=antialias
    )


def triton_interpreter_requested() -> bool:
    """True when Triton's interpreter is switched on for this process (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")
