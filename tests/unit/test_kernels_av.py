"""PyAV frames -> planes, and our conversion against FFmpeg's own (swscale via frame.reformat).

The FFmpeg bounds are measured, not aspirational (kernels/README.md has the table):
- chroma held constant + ACCURATE_RND: matrix, range and the bilinear grid agree with
  swscale to 2 levels, resized or not -- the strict check of our arithmetic;
- smooth natural-like chroma, default BILINEAR: swscale interpolates chroma where we
  replicate it (nearest 4:2:0), and its fast unscaled NV12 path rounds coarser, so the
  bounds are wider (same size yuv420p max 3, nv12 max 9; resized max 10, mean < 2).
Small odd-sized frames take swscale's generic path (interpolated chroma) and differ by up to
~32 levels where chroma ramps steeply; the constant-chroma test covers odd sizes too.
"""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from av.video.reformatter import Interpolation

from kernels.av_planes import YuvInputError, colour_tags, planes_from_av_frame, stack_planes
from kernels.yuv import yuv_to_model_input

AV_COLORSPACE = {"bt601": 5, "bt709": 1}
AV_RANGE = {"limited": 1, "full": 2}


def smooth_plane(height: int, width: int, seed: int, low: int, high: int) -> np.ndarray:
    """Low-frequency waves spanning [low, high]: the kind of chroma natural video has."""
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    wave = np.sin(cols * 0.04 + rows * 0.03 + seed) + np.sin(cols * 0.02 - rows * 0.05 + 2 * seed)
    wave = (wave - wave.min()) / (wave.max() - wave.min())
    return np.round(low + wave * (high - low)).astype(np.uint8)


def make_frame(
    fmt: str, width: int, height: int, matrix: str, colour_range: str, const_chroma=None
):
    """A tagged PyAV frame with smooth luma and smooth (or constant) chroma, padded rows."""
    frame = av.VideoFrame(width, height, fmt)
    limited = colour_range == "limited"
    chroma_h, chroma_w = (height + 1) // 2, (width + 1) // 2
    luma = smooth_plane(height, width, 0, 16 if limited else 0, 235 if limited else 255)
    cb, cr = (
        smooth_plane(chroma_h, chroma_w, seed, 16 if limited else 0, 240 if limited else 255)
        if const_chroma is None
        else np.full((chroma_h, chroma_w), const_chroma[seed - 1], np.uint8)
        for seed in (1, 2)
    )
    planes = (
        [luma, np.stack((cb, cr), -1).reshape(chroma_h, 2 * chroma_w)]
        if fmt == "nv12"
        else [luma, cb, cr]
    )
    for plane, values in zip(frame.planes, planes):
        buffer = np.zeros(plane.buffer_size, np.uint8)
        rows, cols = values.shape
        buffer[: rows * plane.line_size].reshape(rows, plane.line_size)[:, :cols] = values
        plane.update(buffer.tobytes())
    frame.colorspace = AV_COLORSPACE[matrix]
    frame.color_range = AV_RANGE[colour_range]
    return frame


def ffmpeg_rgb(frame, matrix, colour_range, out_hw, interpolation="BILINEAR") -> np.ndarray:
    converted = frame.reformat(
        format="rgb24",
        width=out_hw[1],
        height=out_hw[0],
        interpolation=interpolation,
        src_colorspace="ITU709" if matrix == "bt709" else "ITU601",
        src_color_range="MPEG" if colour_range == "limited" else "JPEG",
        dst_color_range="JPEG",
    )
    return converted.to_ndarray().astype(np.int32)


def our_rgb(frame, out_hw) -> np.ndarray:
    planes = planes_from_av_frame(frame)
    out = yuv_to_model_input(planes.planes, planes.fmt, planes.matrix, planes.colour_range, out_hw)
    return out[0].numpy().astype(np.int32)


ALL_TAGS = [
    (f, m, r) for f in ("yuv420p", "nv12") for m in ("bt601", "bt709") for r in ("limited", "full")
]


@pytest.mark.parametrize("fmt,matrix,colour_range", ALL_TAGS)
@pytest.mark.parametrize(
    "in_wh,out_wh",
    [
        ((64, 48), (64, 48)),
        ((37, 24), (37, 24)),
        ((37, 23), (37, 23)),
        ((130, 74), (64, 36)),
        ((130, 74), (224, 224)),
    ],
)
def test_matches_ffmpeg_accurate_rounding_with_constant_chroma(
    fmt, matrix, colour_range, in_wh, out_wh
):
    frame = make_frame(fmt, *in_wh, matrix, colour_range, const_chroma=(100, 170))
    accurate = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
    diff = np.abs(
        ffmpeg_rgb(frame, matrix, colour_range, out_wh[::-1], accurate)
        - our_rgb(frame, out_wh[::-1])
    )
    assert diff.max() <= 2 and diff.mean() <= 0.35


@pytest.mark.parametrize("fmt,matrix,colour_range", ALL_TAGS)
def test_same_size_matches_ffmpeg_default_bilinear(fmt, matrix, colour_range):
    for width, height in ((64, 48), (130, 74)):
        frame = make_frame(fmt, width, height, matrix, colour_range)
        diff = np.abs(
            ffmpeg_rgb(frame, matrix, colour_range, (height, width))
            - our_rgb(frame, (height, width))
        )
        assert diff.max() <= (3 if fmt == "yuv420p" else 9), (width, height)
        assert diff.mean() <= (1.0 if fmt == "yuv420p" else 1.6), (width, height)


@pytest.mark.parametrize("fmt,matrix,colour_range", ALL_TAGS)
def test_resized_matches_ffmpeg_default_bilinear_within_measured_bounds(fmt, matrix, colour_range):
    frame = make_frame(fmt, 130, 74, matrix, colour_range)
    for out_hw in ((36, 64), (224, 224), (48, 96)):
        diff = np.abs(ffmpeg_rgb(frame, matrix, colour_range, out_hw) - our_rgb(frame, out_hw))
        assert diff.max() <= 12 and diff.mean() <= 2.2, out_hw


@pytest.mark.parametrize("fmt", ["yuv420p", "nv12"])
def test_odd_sizes_differ_from_ffmpeg_only_by_chroma_interpolation(fmt):
    """Measured: small odd frames with steep chroma ramps differ by up to 32 levels, because
    swscale interpolates chroma there; the constant-chroma test above shows the rest agrees."""
    for width, height in ((37, 23), (37, 24), (39, 26)):
        frame = make_frame(fmt, width, height, "bt601", "full")
        diff = np.abs(
            ffmpeg_rgb(frame, "bt601", "full", (height, width)) - our_rgb(frame, (height, width))
        )
        assert diff.max() <= 36 and diff.mean() <= 9.5, (width, height)


def test_planes_are_zero_copy_views_with_line_size_strides():
    frame = make_frame("nv12", 37, 23, "bt709", "limited")
    planes = planes_from_av_frame(frame)
    y, uv = planes.planes
    assert planes.fmt == "nv12" and (planes.height, planes.width) == (23, 37)
    assert y.shape == (1, 23, 37) and y.stride()[1:] == (frame.planes[0].line_size, 1)
    assert uv.shape == (1, 12, 19, 2) and uv.stride()[1] == frame.planes[1].line_size
    assert (
        y.data_ptr() == frame.planes[0].buffer_ptr and uv.data_ptr() == frame.planes[1].buffer_ptr
    )
    expected_y = np.frombuffer(bytes(frame.planes[0]), np.uint8).reshape(23, -1)[:, :37]
    assert np.array_equal(y[0].numpy(), expected_y)


def test_colour_tags_follow_frame_tags_and_conventions():
    assert colour_tags(make_frame("yuv420p", 8, 6, "bt709", "full")) == ("bt709", "full")
    assert colour_tags(make_frame("yuv420p", 8, 6, "bt601", "limited")) == ("bt601", "limited")
    untagged_hd, untagged_sd = (
        av.VideoFrame(1280, 720, "yuv420p"),
        av.VideoFrame(640, 360, "yuv420p"),
    )
    assert colour_tags(untagged_hd) == ("bt709", "limited")
    assert colour_tags(untagged_sd) == ("bt601", "limited")
    assert colour_tags(av.VideoFrame(64, 48, "yuvj420p"))[1] == "full"


def test_stack_batches_like_frames_and_rejects_mixed_ones():
    frames = [make_frame("yuv420p", 37, 23, "bt601", "limited") for _ in range(3)]
    batch = stack_planes([planes_from_av_frame(f) for f in frames])
    assert [p.shape[0] for p in batch.planes] == [3, 3, 3] and batch.planes[0].is_contiguous()
    batched_out = yuv_to_model_input(
        batch.planes, batch.fmt, batch.matrix, batch.colour_range, (16, 16)
    )
    assert torch.equal(
        batched_out[2], torch.from_numpy(our_rgb(frames[2], (16, 16))).to(torch.uint8)
    )
    odd_one = planes_from_av_frame(make_frame("yuv420p", 37, 23, "bt709", "limited"))
    with pytest.raises(YuvInputError, match="frame 1"):
        stack_planes([batch, odd_one])
    with pytest.raises(YuvInputError, match="rgb24"):
        planes_from_av_frame(av.VideoFrame(8, 8, "rgb24"))
