"""The load-time rewrites used for speed compute what the plain PyTorch ops compute."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from models.backbones.inference import (
    ONEDNN_CACHE_VARIABLE,
    ONEDNN_PRIMITIVE_CACHE_CAPACITY,
    onednn_available,
    prepare_for_inference,
    reserve_onednn_primitive_cache,
)
from models.backbones.layers import (
    ACTIVATIONS,
    ConvAct,
    FrozenBatchNorm2d,
    fold_input_affine,
    frames_to_pixels,
    normalise_pixels,
    same_padding,
    scale_outputs,
    symmetric_same_padding,
)

CPU = torch.device("cpu")
needs_onednn = pytest.mark.skipif(not onednn_available(CPU), reason="no oneDNN in this build")


def channels_last(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(1)).contiguous(
        memory_format=torch.channels_last)


@needs_onednn
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_fused_conv_activation_equals_eager(activation):
    conv = ConvAct(8, 16, 3, padding=1, groups=2, activation=activation).eval()
    x = channels_last(2, 8, 9, 9)
    with torch.inference_mode():
        eager = conv(x)
        conv.use_onednn = True
        fused = conv(x)
    torch.testing.assert_close(fused, eager, atol=1e-5, rtol=1e-5)


@needs_onednn
@pytest.mark.parametrize("activation", ["none", "relu"])
def test_fused_residual_equals_eager(activation):
    conv = ConvAct(8, 16, 1).eval()
    x, residual = channels_last(2, 8, 5, 5), channels_last(2, 16, 5, 5)
    with torch.inference_mode():
        eager = conv.forward_residual(x, residual, activation)
        conv.use_onednn = True
        fused = conv.forward_residual(x, residual, activation)
    torch.testing.assert_close(fused, eager, atol=1e-5, rtol=1e-5)
    if activation == "relu":
        assert fused.min() >= 0


def test_residual_needs_a_conv_without_activation():
    with pytest.raises(ValueError, match="own activation"):
        ConvAct(2, 2, 1, activation="relu").forward_residual(
            torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 2), "relu")
    with pytest.raises(ValueError, match="activation"):
        ConvAct(2, 2, 1, activation="swish")


@pytest.mark.parametrize("size", [224, 223, 112, 57, 56, 7])
@pytest.mark.parametrize("kernel", [1, 3, 5])
@pytest.mark.parametrize("stride", [2, 3])
def test_symmetric_padding_and_crop_equal_same_padding(size, kernel, stride):
    x, weight = torch.randn(1, 2, size, size), torch.randn(2, 2, kernel, kernel)
    before, after = same_padding(size, kernel, stride)
    same = F.conv2d(F.pad(x, (before, after, before, after)), weight, stride=stride)
    padding, first, count = symmetric_same_padding(size, kernel, stride)
    cropped = F.conv2d(x, weight, stride=stride, padding=padding)[
        :, :, first : first + count, first : first + count]
    torch.testing.assert_close(cropped, same)


def test_normalise_pixels_is_the_per_channel_affine_map():
    frames = torch.randint(0, 256, (2, 6, 5, 3), dtype=torch.uint8)
    pixels = frames_to_pixels(frames)
    scale, shift = torch.tensor([0.5, 2.0, -1.0]), torch.tensor([1.0, -3.0, 0.25])
    expected = pixels.float() * scale.view(1, 3, 1, 1) + shift.view(1, 3, 1, 1)
    for dtype in (torch.float32, torch.bfloat16):
        result = normalise_pixels(pixels, scale, shift, dtype)
        assert result.dtype == dtype and result.shape == (2, 3, 6, 5)
        assert result.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(result.float(), expected, atol=0.02 if dtype != torch.float32
                                   else 1e-5, rtol=0.01)


def test_folding_scales_and_affines_is_exact():
    x = torch.randn(3, 4, 5, 5)
    conv = torch.nn.Conv2d(4, 6, 1)
    norm = FrozenBatchNorm2d(4)
    norm.weight.uniform_(0.5, 2)
    norm.running_var.uniform_(0.5, 2)
    norm.running_mean.normal_()
    gamma = torch.randn(6)
    with torch.no_grad():
        expected = conv(norm(x)) * gamma.view(1, -1, 1, 1)
        fold_input_affine(conv, *norm.affine())
        scale_outputs(conv, gamma)
        torch.testing.assert_close(conv(x), expected, atol=1e-5, rtol=1e-5)


def test_prepare_rejects_an_unknown_precision():
    from models.backbones.open_nsfw import OpenNsfwResNet

    with torch.device("meta"):
        module = OpenNsfwResNet()
    with pytest.raises(ValueError, match="precision"):
        prepare_for_inference(module, CPU, "fp16")


def test_the_onednn_primitive_cache_is_reserved_unless_the_operator_sized_it(monkeypatch):
    monkeypatch.delenv(ONEDNN_CACHE_VARIABLE, raising=False)
    reserve_onednn_primitive_cache()
    assert os.environ[ONEDNN_CACHE_VARIABLE] == str(ONEDNN_PRIMITIVE_CACHE_CAPACITY)
    monkeypatch.setenv(ONEDNN_CACHE_VARIABLE, "64")
    reserve_onednn_primitive_cache()
    assert os.environ[ONEDNN_CACHE_VARIABLE] == "64"
