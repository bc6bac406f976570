"""The torch reference (the engine's CPU path) against independent definitions of its semantics."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from kernels.yuv import (
    YuvInputError,
    yuv_to_model_input,
    yuv_to_rgb_full_resolution_reference,
    yuv_to_rgb_resized_reference,
)

FORMAT_MATRIX_RANGE = list(
    itertools.product(("nv12", "yuv420p"), ("bt601", "bt709"), ("limited", "full"))
)
KR_KB = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}


def random_yuv420p(batch: int, height: int, width: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    chroma = ((height + 1) // 2, (width + 1) // 2)
    y = torch.randint(0, 256, (batch, height, width), dtype=torch.uint8, generator=generator)
    u = torch.randint(0, 256, (batch, *chroma), dtype=torch.uint8, generator=generator)
    v = torch.randint(0, 256, (batch, *chroma), dtype=torch.uint8, generator=generator)
    return y, u, v


def as_format(fmt: str, y, u, v):
    """The same pixels as yuv420p planes or as NV12 (interleaved UV) planes."""
    if fmt == "yuv420p":
        return (y, u, v)
    return (y, torch.stack((u, v), dim=-1).flatten(-2))


def textbook_rgb(y, u, v, matrix: str, colour_range: str) -> torch.Tensor:
    """Independent float64 RGB (N, 3, H, W): replicate chroma 2x2, apply the Kr/Kb equations."""
    height, width = y.shape[-2:]

    def up(plane):
        return (
            plane.double().repeat_interleave(2, -2).repeat_interleave(2, -1)[..., :height, :width]
        )

    kr, kb = KR_KB[matrix]
    if colour_range == "limited":
        luma, cb, cr = (y.double() - 16) / 219, (up(u) - 128) / 224, (up(v) - 128) / 224
    else:
        luma, cb, cr = y.double() / 255, (up(u) - 128) / 255, (up(v) - 128) / 255
    red = luma + 2 * (1 - kr) * cr
    blue = luma + 2 * (1 - kb) * cb
    green = (luma - kr * red - kb * blue) / (1 - kr - kb)
    return (torch.stack((red, green, blue), dim=1) * 255).clamp(0, 255)


@pytest.mark.parametrize("fmt,matrix,colour_range", FORMAT_MATRIX_RANGE)
@pytest.mark.parametrize("height,width", [(23, 37), (48, 64), (5, 1)])
def test_same_size_output_is_textbook_conversion(fmt, matrix, colour_range, height, width):
    y, u, v = random_yuv420p(2, height, width, seed=height)
    out = yuv_to_rgb_resized_reference(
        as_format(fmt, y, u, v), fmt, matrix, colour_range, (height, width)
    )
    expected = torch.floor(textbook_rgb(y, u, v, matrix, colour_range) + 0.5).permute(0, 2, 3, 1)
    assert out.dtype == torch.uint8 and out.shape == (2, height, width, 3)
    assert (out.double() - expected).abs().max() <= 1.0


@pytest.mark.parametrize("fmt,matrix,colour_range", FORMAT_MATRIX_RANGE)
@pytest.mark.parametrize(
    "in_hw,out_hw", [((74, 130), (36, 64)), ((23, 37), (61, 83)), ((48, 64), (224, 224))]
)
def test_resize_equals_torch_bilinear_of_full_resolution_rgb(
    fmt, matrix, colour_range, in_hw, out_hw
):
    y, u, v = random_yuv420p(2, *in_hw, seed=1)
    planes = as_format(fmt, y, u, v)
    full = yuv_to_rgb_full_resolution_reference(planes, fmt, matrix, colour_range)
    expected = F.interpolate(
        full, size=out_hw, mode="bilinear", align_corners=False, antialias=False
    )
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    normalised = yuv_to_rgb_resized_reference(planes, fmt, matrix, colour_range, out_hw, mean, std)
    levels = (
        normalised * torch.tensor(std)[:, None, None] * 255
        + torch.tensor(mean)[:, None, None] * 255
    )
    assert normalised.shape == (2, 3, *out_hw) and normalised.dtype == torch.float32
    assert (levels - expected).abs().max() < 1e-3
    as_uint8 = yuv_to_rgb_resized_reference(planes, fmt, matrix, colour_range, out_hw)
    assert (as_uint8.permute(0, 3, 1, 2).double() - expected.double()).abs().max() <= 0.5 + 1e-3


def test_known_colours():
    def convert(y, u, v, matrix, colour_range):
        planes = tuple(torch.full((1, 2, 2), value, dtype=torch.uint8) for value in (y, u, v))
        planes = (planes[0], planes[1][:, :1, :1], planes[2][:, :1, :1])
        return yuv_to_rgb_resized_reference(planes, "yuv420p", matrix, colour_range, (1, 1))[
            0, 0, 0
        ].tolist()

    assert convert(16, 128, 128, "bt709", "limited") == [0, 0, 0]
    assert convert(235, 128, 128, "bt601", "limited") == [255, 255, 255]
    assert convert(255, 128, 128, "bt601", "full") == [255, 255, 255]
    assert convert(128, 128, 128, "bt709", "full") == [128, 128, 128]
    red_709 = convert(63, 102, 240, "bt709", "limited")  # BT.709 studio-range red
    red_601 = convert(81, 90, 240, "bt601", "limited")  # BT.601 studio-range red
    for red in (red_709, red_601):
        assert red[0] >= 253 and red[1] <= 2 and red[2] <= 2


def test_uint8_rounds_half_up():
    y = torch.tensor([[[10, 11]]], dtype=torch.uint8)
    chroma = torch.full((1, 1, 1), 128, dtype=torch.uint8)
    out = yuv_to_rgb_resized_reference((y, chroma, chroma), "yuv420p", "bt601", "full", (1, 1))
    assert out[0, 0, 0].tolist() == [11, 11, 11]  # 10.5 -> 11, where torch.round gives 10


def test_padded_strided_planes_equal_contiguous_copies():
    generator = torch.Generator().manual_seed(3)
    big = torch.randint(0, 256, (3, 30, 64), dtype=torch.uint8, generator=generator)
    y = big[1:, 3:26, 2:39]  # 2 x 23 x 37 with storage offset and row padding
    uv = torch.randint(0, 256, (2, 12, 48), dtype=torch.uint8, generator=generator)[:, :, :38]
    strided = yuv_to_rgb_resized_reference((y, uv), "nv12", "bt709", "limited", (17, 29))
    packed = yuv_to_rgb_resized_reference(
        (y.contiguous(), uv.contiguous()), "nv12", "bt709", "limited", (17, 29)
    )
    assert torch.equal(strided, packed)


def test_nv12_and_yuv420p_spellings_agree():
    y, u, v = random_yuv420p(2, 23, 37)
    nv12_flat = as_format("nv12", y, u, v)
    nv12_pairs = (y, torch.stack((u, v), dim=-1))
    outs = [
        yuv_to_rgb_resized_reference(planes, fmt, "bt601", "limited", (11, 13))
        for fmt, planes in (("yuv420p", (y, u, v)), ("nv12", nv12_flat), ("nv12", nv12_pairs))
    ]
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


def test_unbatched_planes_are_one_frame_and_aliases_match():
    y, u, v = random_yuv420p(1, 10, 12)
    batched = yuv_to_model_input((y, u, v), "yuv420p", "bt709", "full", (5, 6))
    single = yuv_to_model_input((y[0], u[0], v[0]), "yuv420p", "BT.709", "pc", (5, 6))
    assert torch.equal(batched, single)
    assert torch.equal(
        yuv_to_model_input((y, u, v), "yuv420p", "bt601", "tv", (5, 6)),
        yuv_to_rgb_resized_reference((y, u, v), "yuv420p", "bt601", "limited", (5, 6)),
    )


@pytest.mark.parametrize(
    "mutate,message",
    [
        (
            lambda a: {**a, "planes": (a["planes"][0], a["planes"][1][:, :-1], a["planes"][2])},
            "U plane shape",
        ),
        (lambda a: {**a, "planes": (a["planes"][0].float(), *a["planes"][1:])}, "uint8"),
        (lambda a: {**a, "planes": a["planes"][:2]}, "needs 3 planes"),
        (lambda a: {**a, "fmt": "rgb24"}, "plane format"),
        (lambda a: {**a, "matrix": "smpte240m"}, "colour matrix"),
        (lambda a: {**a, "colour_range": "studio"}, "colour range"),
        (lambda a: {**a, "out_size": (0, 3)}, "out_size"),
        (lambda a: {**a, "mean": (0.5, 0.5, 0.5)}, "together"),
        (lambda a: {**a, "mean": (0.5,) * 3, "std": (0.2, 0.0, 0.2)}, "std values"),
    ],
)
def test_invalid_inputs_raise_typed_errors(mutate, message):
    arguments = {
        "planes": random_yuv420p(1, 6, 8),
        "fmt": "yuv420p",
        "matrix": "bt601",
        "colour_range": "limited",
        "out_size": (3, 4),
    }
    with pytest.raises(YuvInputError, match=message):
        yuv_to_model_input(**mutate(arguments))
