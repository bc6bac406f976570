"""Small building blocks shared by the native backbones.

Kept apart so each backbone file reads as its architecture only. Nothing here knows where the
weights come from.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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

    def affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, shift) per channel: the norm is x * scale + shift."""
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)
        return scale, self.bias - self.running_mean * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, shift = self.affine()
        return x * scale.view(1, -1, 1, 1).to(x.dtype) + shift.view(1, -1, 1, 1).to(x.dtype)


class LayerScale(nn.Module):
    """Multiplies by a learned per-channel factor `gamma` of shape (C, 1, 1)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


ACTIVATIONS = ("none", "relu", "relu6", "gelu")
# activation -> (oneDNN post-op name, its scalars, its algorithm), as torch's mkldnn ops name them.
_ONEDNN_POST_OPS = {
    "none": ("none", [], ""),
    "relu": ("relu", [], ""),
    "relu6": ("hardtanh", [0.0, 6.0], ""),
    "gelu": ("gelu", [], "none"),  # "none": the exact erf GELU, not the tanh approximation
}


class ConvAct(nn.Conv2d):
    """A convolution followed by its activation, one module so that the pair can run fused.

    Eager, it is `activation(conv2d(x))`. After `use_onednn = True` (set at load time by
    models.backbones.inference on CPU), it is one oneDNN call with the activation as a
    post-op: the activation is applied while the output is still in cache instead of in a
    second pass over memory, which measured 25-30% of ResNet/EfficientNet time here in bf16.
    Parameter names are nn.Conv2d's, so weights load the same either way.
    """

    def __init__(self, *args, activation: str = "none", **kwargs) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        super().__init__(*args, **kwargs)
        self.activation = activation
        self.use_onednn = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_padded(x, self.padding)

    def forward_padded(self, x: torch.Tensor, padding: tuple[int, ...]) -> torch.Tensor:
        """The convolution and activation with a (symmetric) padding other than its own."""
        if self.use_onednn:
            attr, scalars, algorithm = _ONEDNN_POST_OPS[self.activation]
            return torch.ops.mkldnn._convolution_pointwise(
                x, self.weight, self.bias, list(padding), list(self.stride),
                list(self.dilation), self.groups, attr, scalars, algorithm)
        convolved = F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                             self.groups)
        return activate(convolved, self.activation)

    def forward_residual(self, x: torch.Tensor, residual: torch.Tensor,
                         activation: str) -> torch.Tensor:
        """`activation(conv(x) + residual)` for a ConvAct without an activation of its own:
        a residual block's last convolution, whose sum and activation oneDNN fuses too."""
        if self.activation != "none":
            raise ValueError("forward_residual needs a convolution without its own activation")
        if self.use_onednn:
            attr, scalars, algorithm = _ONEDNN_POST_OPS[activation]
            if activation == "none":  # the binary op takes no unary post-op as None
                attr, algorithm = None, None
            return torch.ops.mkldnn._convolution_pointwise(
                x, residual, self.weight, self.bias, list(self.padding), list(self.stride),
                list(self.dilation), self.groups, "add", 1.0, attr, scalars, algorithm)
        return activate(super().forward(x) + residual, activation)


def activate(x: torch.Tensor, activation: str) -> torch.Tensor:
    if activation == "relu":
        return F.relu(x)
    if activation == "relu6":
        return F.relu6(x)
    if activation == "gelu":
        return F.gelu(x)
    return x


@torch.no_grad()
def scale_outputs(layer: nn.Conv2d | nn.Linear, scale: torch.Tensor) -> None:
    """Fold a per-output-channel factor applied after `layer` into its weight and bias."""
    scale = scale.reshape(-1)
    layer.weight.mul_(scale.view(-1, *([1] * (layer.weight.dim() - 1))))
    layer.bias.mul_(scale)


@torch.no_grad()
def fold_input_affine(layer: nn.Conv2d | nn.Linear, scale: torch.Tensor,
                      shift: torch.Tensor) -> None:
    """Fold `x * scale + shift` (per input channel) applied before an unpadded 1x1 conv or a
    linear layer into it: W' = W * scale, b' = b + W @ shift. Exact up to rounding."""
    weight = layer.weight
    layer.bias.add_((weight.flatten(2).sum(-1) if weight.dim() == 4 else weight) @ shift)
    layer.weight.mul_(scale.view(1, -1, *([1] * (weight.dim() - 2))))


def frames_to_pixels(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, 3) RGB frames -> uint8 (N, 3, H, W) pixels 0..255, channels_last in memory.

    Permuting an NHWC tensor to NCHW is a view whose strides already are channels_last: no copy.
    Each backbone converts it once, with its own normalisation (normalise_pixels).
    """
    if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[-1] != 3:
        raise ValueError(
            f"expected uint8 frames of shape (N, H, W, 3), got {frames.dtype} {tuple(frames.shape)}"
        )
    return frames.permute(0, 3, 1, 2)


def normalise_pixels(pixels: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor,
                     dtype: torch.dtype) -> torch.Tensor:
    """pixels * scale + shift per channel, computed in fp32, returned as `dtype` channels_last.

    pixels: (N, 3, H, W) uint8 or float. The work is done on the NHWC memory seen as rows of
    W * 3 values, with scale and shift tiled to that length: broadcasting along the channel
    axis itself (3 long, innermost in channels_last) defeats vectorisation and measured 4x
    slower. One multiply-add pass, then one cast.
    """
    batch, channels, height, width = pixels.shape
    rows = pixels.permute(0, 2, 3, 1).reshape(batch, height, width * channels)
    tiled_shift, tiled_scale = shift.reshape(-1).repeat(width), scale.reshape(-1).repeat(width)
    normalised = torch.addcmul(tiled_shift, rows, tiled_scale).to(dtype)
    return normalised.view(batch, height, width, channels).permute(0, 3, 1, 2)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) along one axis: output = ceil(size / stride)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def symmetric_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """(padding, first, count): SAME padding as a symmetric padding plus an output crop.

    SAME window i starts at input index stride * i - before; with a symmetric padding p, window
    j starts at stride * j - p. The smallest p >= after with p - before a multiple of the stride
    lines the windows up (j = i + (p - before) / stride), so conv(padding=p)[first:first+count]
    equals the SAME convolution exactly, without copying the input into a padded buffer.
    """
    before, after = same_padding(size, kernel, stride)
    padding = after + (before - after) % stride
    return padding, (padding - before) // stride, -(-size // stride)
