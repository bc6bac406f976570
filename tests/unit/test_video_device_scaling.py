"""The GPU-resident decode path, tested without a GPU: the same KernelScaler, the same Triton
kernel (under Triton's interpreter on CPU tensors), fed NV12, YUV420P and P010 planes of
software-decoded frames, against swscale with exact rounding and full-resolution chroma
(EXACT_SWSCALE_FLAGS; CPU nodes scale with swscale's faster bilinear path, whose rounding bias
shows as up to 2 levels on average: the last decode test measures it).

On smooth content (photograph-like) the two paths agree to within one level when shrinking
(mean 0.35-0.4, under 1% of samples 2 apart; enlarging, where swscale's chroma interpolation
shows, reaches 4). On hard chroma
edges they differ more (swscale interpolates chroma, the kernel takes the nearest sample;
their shrink filters differ in shape): measured on tests.media's sawtooth pattern at
256x144 -> 224x224, mean 4 levels. That is a property of the content, not of the path.
"""

from __future__ import annotations

import av
import numpy as np
import pytest

from engine.video import decode_segment, hwdecode, plan_segments, probe_video
from engine.video.device_scaling import KernelScaler
from engine.video.scaling import EXACT_SWSCALE_FLAGS, UprightScaler
from tests.media import make_smooth_video

OUTPUT_SIZE = (24, 32)


def decoded_frames(path, count: int = 3) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame)
            if len(frames) == count:
                return frames
    return frames


def assert_within_one_level(a: np.ndarray, b: np.ndarray) -> None:
    """Measured on these shrinks: mean 0.35-0.4 levels, under 1% of samples 2 levels apart,
    none further (rounding of two float pipelines that land either side of .5)."""
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    difference = np.abs(a.astype(np.int16) - b.astype(np.int16))
    assert difference.mean() <= 0.5, difference.mean()
    assert (difference > 1).mean() <= 0.01, (difference > 1).mean()
    assert difference.max() <= 2, difference.max()


def assert_within_fast_swscale_bias(a: np.ndarray, b: np.ndarray) -> None:
    """Against the product's fast swscale path (not the exact flags): its biased rounding and
    coarser chroma show, measured mean 1.9, max 9 levels on these smooth frames."""
    difference = np.abs(a.astype(np.int16) - b.astype(np.int16))
    assert difference.mean() <= 2.5 and difference.max() <= 12, (difference.mean(),
                                                                  difference.max())


@pytest.mark.parametrize("planes_format", ["nv12", "yuv420p"])
@pytest.mark.parametrize("rotation", [0, 90])
def test_kernel_scaler_matches_swscale_within_one_level(
    tmp_path, triton_device, planes_format, rotation
):
    path = tmp_path / "smooth.mp4"
    make_smooth_video(path, size=(96, 64), duration_s=0.3)
    kernel = KernelScaler(OUTPUT_SIZE, rotation, triton_device)
    swscale = UprightScaler(OUTPUT_SIZE, rotation, EXACT_SWSCALE_FLAGS)
    for frame in decoded_frames(path):
        frame = frame.reformat(format=planes_format) if planes_format == "nv12" else frame
        picture = kernel.convert(frame)
        assert picture.device.type == triton_device
        assert_within_one_level(kernel.stack([picture])[0], swscale.convert(frame))


def test_p010_planes_of_a_ten_bit_decode_match_swscale_within_one_level(tmp_path, triton_device):
    """A 10-bit software decode gives yuv420p10le; the scaler repacks it to P010 (NVDEC's
    10-bit layout) and the kernel reads 16-bit samples."""
    path = tmp_path / "ten-bit.mp4"
    make_smooth_video(path, size=(96, 64), duration_s=0.3, pix_fmt="yuv420p10le")
    kernel = KernelScaler(OUTPUT_SIZE, 0, triton_device)
    swscale = UprightScaler(OUTPUT_SIZE, 0, EXACT_SWSCALE_FLAGS)
    frames = decoded_frames(path)
    assert frames[0].format.name == "yuv420p10le"
    for frame in frames:
        p010 = frame.reformat(format="p010le")
        for source in (frame, p010):
            assert_within_one_level(
                kernel.stack([kernel.convert(source)])[0], swscale.convert(frame)
            )


def test_decode_segment_with_the_kernel_picks_the_same_frames_as_swscale(
    tmp_path, triton_device
):
    path = tmp_path / "smooth.mp4"
    make_smooth_video(path, size=(96, 64), duration_s=2.0)
    probe = probe_video(str(path))
    for segment in plan_segments(probe, 1000):
        kernel = decode_segment(str(path), probe, segment, 500, OUTPUT_SIZE, preprocess="kernel")
        swscale = decode_segment(
            str(path), probe, segment, 500, OUTPUT_SIZE, preprocess="swscale"
        )
        assert kernel.timestamps_ms == swscale.timestamps_ms
        assert kernel.frames.dtype == np.uint8 and kernel.frames.flags["C_CONTIGUOUS"]
        assert_within_fast_swscale_bias(kernel.frames, swscale.frames)


def test_formats_the_kernel_does_not_read_go_through_swscale(tmp_path):
    path = tmp_path / "smooth.mp4"
    make_smooth_video(path, size=(96, 64), duration_s=0.2)
    (frame,) = decoded_frames(path, 1)
    full_chroma = frame.reformat(format="yuv444p")
    kernel = KernelScaler(OUTPUT_SIZE, 0, "cpu")
    assert np.array_equal(
        kernel.stack([kernel.convert(full_chroma)])[0],
        UprightScaler(OUTPUT_SIZE, 0).convert(full_chroma),
    )


@pytest.mark.skipif(hwdecode.cuda_unavailable_reason() is None, reason="NVDEC is present")
def test_decode_path_without_nvdec():
    assert hwdecode.choose_decode_path("auto", "auto").kernel_device is None
    assert hwdecode.choose_decode_path("auto", "swscale").kernel_device is None
    path = hwdecode.choose_decode_path("none", "kernel")
    assert path.hardware is None and path.kernel_device == "cpu"
    with pytest.raises(ValueError, match="preprocess"):
        hwdecode.choose_decode_path("auto", "gpu")


@pytest.mark.skipif(hwdecode.cuda_unavailable_reason() is None, reason="NVDEC is present")
def test_report_says_loudly_when_a_visible_gpu_cannot_decode(monkeypatch):
    quiet = hwdecode.decode_path_report("auto")
    assert quiet["decoder"] == "software" and quiet["scaler"] == "swscale"
    assert quiet["nvdec_fallback"] is hwdecode._gpu_visible()
    monkeypatch.setattr(hwdecode, "_gpu_visible", lambda: True)
    loud = hwdecode.decode_path_report("auto")
    assert loud["nvdec_fallback"] is True and "'video'" in loud["reason"]
    assert hwdecode.decode_path_report("none")["nvdec_fallback"] is False


@pytest.mark.gpu
@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_nvdec_frames_stay_on_the_gpu_and_match_the_software_path(tmp_path, codec):
    """On a GPU node: NVDEC + Triton (auto) against software + swscale, same picks."""
    assert hwdecode.choose_decode_path("cuda", "auto").kernel_device == "cuda"
    path = tmp_path / f"{codec}.mp4"
    make_smooth_video(path, size=(256, 144), duration_s=3.0, codec=codec)
    probe = probe_video(str(path))
    for segment in plan_segments(probe, 1000):
        gpu = decode_segment(str(path), probe, segment, 500, (224, 224), hwaccel="cuda")
        cpu = decode_segment(str(path), probe, segment, 500, (224, 224), hwaccel="none")
        assert gpu.timestamps_ms == cpu.timestamps_ms
        assert_within_fast_swscale_bias(gpu.frames, cpu.frames)
