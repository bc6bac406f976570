"""nsfwjs's MobileNetV2 classifiers (Drawing, Hentai, Neutral, Porn, Sexy), native PyTorch.

nsfwjs 4.4.0 ships them as tfjs models: `mobilenet_v2` is a Keras MobileNetV2 (width 1.0,
BatchNorm kept, eps 1e-3) with a 1280 -> 256 -> 128 -> 5 head, fed RGB / 255; `mobilenet_v2_mid`
is a TF-Hub MobileNetV2 of width 1.4 whose BatchNorms the converter already folded, with one
1792 -> 5 layer, fed RGB / 255 * 2 - 1 (its graph's Mul and Sub). One class holds both: the
widths and the head come from the constructor, and the pixel scale and shift are buffers that
the converters fill from the source. The weights come from models/nsfwjs_import.py.

Keras pads each stride-2 layer with ZeroPadding2D((0, 1), (0, 1)) before a VALID convolution;
on the even sizes a 224 input produces that is exactly TensorFlow SAME padding, which
SameConv2d computes without a padded copy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.backbones.efficientnet_lite import SameConv2d
from models.backbones.layers import FrozenBatchNorm2d, activate, frames_to_pixels, normalise_pixels

CLASS_NAMES = ("drawing", "hentai", "neutral", "porn", "sexy")
INPUT_SIZE = 224
KERAS_BN_EPS = 1e-3
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# MobileNetV2's inverted-residual stages at width 1.0: (expansion, out channels, repeats, stride).
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))


def scaled_width(channels: int, width: float, divisor: int = 8) -> int:
    """Channels at a width multiplier, rounded as MobileNetV2 does (to a multiple of 8, never
    more than 10% below the exact value)."""
    exact = channels * width
    rounded = max(divisor, int(exact + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * exact else rounded


class ConvNormAct(nn.Module):
    """SAME convolution, optional inference BatchNorm, activation; one ConvAct once folded.

    Until fold() the three run one after another, as the source graph has them; fold() moves
    the norm into the convolution's weight and bias and hands the activation to ConvAct, so
    that on the CPU it runs as a oneDNN post-op.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1,
                 activation: str = "none", batch_norm: bool = True) -> None:
        super().__init__()
        self.conv = SameConv2d(in_ch, out_ch, kernel, stride=stride, groups=groups,
                               bias=not batch_norm)
        self.norm: nn.Module = FrozenBatchNorm2d(out_ch, eps=KERAS_BN_EPS) if batch_norm \
            else nn.Identity()
        self.activation = activation
        self.folded = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.folded:
            return self.conv(x)
        return activate(self.norm(self.conv(x)), self.activation)

    def forward_residual(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """`self(x) + residual` for a unit without activation; one oneDNN call once folded."""
        if self.folded:
            return self.conv.forward_residual(x, residual, "none")
        return self(x) + residual

    @torch.no_grad()
    def fold(self) -> None:
        if isinstance(self.norm, FrozenBatchNorm2d):
            scale, shift = self.norm.affine()
            self.conv.weight.mul_(scale.view(-1, 1, 1, 1))
            self.conv.bias = nn.Parameter(shift.clone(), requires_grad=False)
            self.norm = nn.Identity()
        self.conv.activation = self.activation
        self.folded = True


class InvertedResidual(nn.Module):
    """1x1 expand (absent at expansion 1), 3x3 depthwise, 1x1 linear project, identity skip."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int,
                 batch_norm: bool) -> None:
        super().__init__()
        hidden = in_ch * expansion
        self.expand = (ConvNormAct(in_ch, hidden, 1, activation="relu6", batch_norm=batch_norm)
                       if expansion != 1 else None)
        self.depthwise = ConvNormAct(hidden, hidden, 3, stride=stride, groups=hidden,
                                     activation="relu6", batch_norm=batch_norm)
        self.project = ConvNormAct(hidden, out_ch, 1, batch_norm=batch_norm)
        self.has_skip = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.depthwise(x if self.expand is None else self.expand(x))
        return self.project.forward_residual(y, x) if self.has_skip else self.project(y)


class NsfwjsMobileNetV2(nn.Module):
    """pixels (N, 3, H, W) RGB 0..255 (uint8 or float, channels_last from frames_to_pixels)
    -> probabilities (N, 5) for CLASS_NAMES.

    width: 1.0 for nsfwjs `mobilenet_v2`, 1.4 for `mobilenet_v2_mid`.
    hidden: the widths of the ReLU layers between the pooled features and the 5 outputs.
    batch_norm: whether the source keeps BatchNorm layers (Keras) or folded them (TF-Hub graph).
    Frames of another size than 224 are resized as nsfwjs does (bilinear, align_corners).
    """

    class_names = CLASS_NAMES

    def __init__(self, width: float = 1.0, hidden: tuple[int, ...] = (256, 128),
                 batch_norm: bool = True) -> None:
        super().__init__()
        stem = scaled_width(STEM_CHANNELS, width)
        self.stem = ConvNormAct(3, stem, 3, stride=2, activation="relu6", batch_norm=batch_norm)
        blocks, in_ch = [], stem
        for expansion, channels, repeats, stride in STAGES:
            out_ch = scaled_width(channels, width)
            for index in range(repeats):
                blocks.append(InvertedResidual(in_ch, out_ch, stride if index == 0 else 1,
                                               expansion, batch_norm))
                in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        head = scaled_width(HEAD_CHANNELS, width) if width > 1.0 else HEAD_CHANNELS
        self.head = ConvNormAct(in_ch, head, 1, activation="relu6", batch_norm=batch_norm)
        layers: list[nn.Module] = []
        for features in hidden:
            layers += [nn.Linear(head, features), nn.ReLU()]
            head = features
        self.classifier = nn.Sequential(*layers, nn.Linear(head, len(CLASS_NAMES)))
        # value = pixel * pixel_scale + pixel_shift is what the source network was fed.
        self.register_buffer("pixel_scale", torch.tensor(1.0 / 255.0))
        self.register_buffer("pixel_shift", torch.tensor(0.0))
        self.stem_takes_pixels = False

    def forward_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        dtype = self.stem.conv.weight.dtype
        if self.stem_takes_pixels:  # the scale lives in the stem's weights (see fold)
            x = pixels.to(dtype)
        else:
            scale = self.pixel_scale.float().expand(3)
            x = normalise_pixels(pixels, scale, self.pixel_shift.float().expand(3), dtype)
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                              align_corners=True)
        x = self.head(self.blocks(self.stem(x)))
        # The 7x7 average pool covers the whole map; the classifier runs in fp32 whatever the
        # body's precision (prepare_for_inference keeps it fp32).
        probabilities = self.classifier(x.mean(dim=(2, 3), dtype=torch.float32))
        return torch.softmax(probabilities.float(), dim=-1)

    @torch.no_grad()
    def fold_for_inference(self) -> None:
        """Fold every BatchNorm into its convolution and, when the input has no shift, the
        pixel scale into the stem (its zero padding stays zero under a scale). Call once."""
        for module in self.modules():
            if isinstance(module, ConvNormAct):
                module.fold()
        if float(self.pixel_shift) == 0.0:
            self.stem.conv.weight.mul_(self.pixel_scale)
            self.stem_takes_pixels = True

    def fp32_modules(self) -> list[nn.Module]:
        return [self.classifier]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: uint8 (N, H, W, 3) RGB."""
        return self.forward_pixels(frames_to_pixels(frames))


def nsfwjs_mobilenet_v2_mid() -> NsfwjsMobileNetV2:
    """The module for nsfwjs `mobilenet_v2_mid` (width 1.4, folded norms, one output layer)."""
    return NsfwjsMobileNetV2(width=1.4, hidden=(), batch_norm=False)
