"""Small building blocks shared by the native backbones.

Kept apart so each backbone file reads as its architecture only. Nothing here knows where the
weights come from.
"""

from __future__ import annotations

import torch
from torch import nn


class FrozenBatchNorm2d(nn.Module):
    """Inference-only batch norm: a per-channel affine map from stored running statistics.

    The ONNX graphs keep BatchNorm's four tensors but not PyTorch's `num_batches_tracked`, so a
    plain nn.BatchNorm2d could not be loaded strictly; this module has exactly those four.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)
        shift = self.bias - self.running_mean * scale
        return x * scale.view(1, -1, 1, 1).to(x.dtype) + shift.view(1, -1, 1, 1).to(x.dtype)


class LayerScale(nn.Module):
    """Multiplies by a learned per-channel factor `gamma` of shape (C, 1, 1)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


def frames_to_pixels(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, 3) RGB frames -> float32 (N, 3, H, W) in 0..255, channels_last in memory.

    Permuting an NHWC tensor to NCHW is a view whose strides already are channels_last, so the
    only copy is the dtype conversion.
    """
    if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[-1] != 3:
        raise ValueError(
            f"expected uint8 frames of shape (N, H, W, 3), got {frames.dtype} {tuple(frames.shape)}"
        )
    pixels = frames.permute(0, 3, 1, 2).to(torch.float32)
    return pixels.contiguous(memory_format=torch.channels_last)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) along one axis: output = ceil(size / stride)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2
