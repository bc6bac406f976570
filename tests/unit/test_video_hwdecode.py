"""Hardware decode choice: NVDEC when a CUDA device opens, software otherwise, same picks either way."""

from __future__ import annotations

import logging

import av
import numpy as np
import pytest

from engine.video import VideoError, decode_segment, hwdecode, plan_segments, probe_video
from engine.video.scaling import UprightScaler
from tests.media import make_pattern_video

OUTPUT_SIZE = (36, 64)


def decode_every_segment(path, hwaccel: str):
    probe = probe_video(str(path))
    return [
        decode_segment(str(path), probe, segment, 250, OUTPUT_SIZE, hwaccel=hwaccel)
        for segment in plan_segments(probe, 1000)
    ]


def assert_same_batches(got, expected) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.timestamps_ms == b.timestamps_ms
        assert np.array_equal(a.frames, b.frames)


@pytest.fixture
def fresh_log(monkeypatch):
    """The choice is logged once per process; forget earlier tests' lines."""
    monkeypatch.setattr(hwdecode, "_logged_messages", set())


no_cuda = pytest.mark.skipif(
    hwdecode.cuda_unavailable_reason() is None, reason="a CUDA device is present"
)


@no_cuda
def test_auto_falls_back_to_software_with_identical_picks_and_logs_once(
    tmp_path, caplog, fresh_log
):
    path = tmp_path / "v.mp4"
    make_pattern_video(path, duration_s=2.0, fps=30, size=(96, 64), gop_s=1.0)
    with caplog.at_level(logging.INFO, logger="engine.video.hwdecode"):
        automatic = decode_every_segment(path, "auto")
        software = decode_every_segment(path, "none")
    assert_same_batches(automatic, software)
    lines = [r.getMessage() for r in caplog.records if r.name == "engine.video.hwdecode"]
    fallback = [line for line in lines if "no usable CUDA device" in line]
    assert len(fallback) == 1, lines  # two segments decoded, one line
    assert any("switched off" in line for line in lines)


@no_cuda
def test_forced_cuda_without_a_device_raises_a_readable_video_error(tmp_path):
    path = tmp_path / "v.mp4"
    make_pattern_video(path, duration_s=1.0, fps=30, size=(96, 64))
    probe = probe_video(str(path))
    with pytest.raises(VideoError) as raised:
        decode_segment(
            str(path), probe, plan_segments(probe, 1000)[0], 250, OUTPUT_SIZE, hwaccel="cuda"
        )
    message = str(raised.value)
    assert "no CUDA device" in message and "hwaccel='auto'" in message
    assert "Traceback" not in message and "object at" not in message and "Errno" not in message


def test_unknown_hwaccel_mode_is_a_value_error(tmp_path):
    path = tmp_path / "v.mp4"
    make_pattern_video(path, duration_s=0.5, fps=30, size=(64, 48))
    probe = probe_video(str(path))
    with pytest.raises(ValueError, match="hwaccel"):
        decode_segment(
            str(path), probe, plan_segments(probe, 1000)[0], 250, OUTPUT_SIZE, hwaccel="gpu"
        )


def test_downloaded_semi_planar_frames_scale_exactly_like_software_frames():
    """NVDEC downloads NV12; converted back to planar it must give the very same RGB picks."""
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    planar = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    semi_planar = planar.reformat(format="nv12")
    restored = hwdecode.software_frame(semi_planar)
    assert restored.format.name == "yuv420p"
    for restored_plane, planar_plane in zip(restored.planes, planar.planes):
        assert bytes(restored_plane) == bytes(planar_plane)
    for rotation in (0, 90):
        scaler = UprightScaler((30, 40), rotation)
        assert np.array_equal(scaler.convert(semi_planar), scaler.convert(planar))
    assert hwdecode.software_frame(planar) is planar


@pytest.mark.gpu
@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_nvdec_picks_equal_software_picks(tmp_path, codec):
    """On a GPU node: forced NVDEC decodes every segment to the same pixels and times as software."""
    assert hwdecode.cuda_unavailable_reason() is None
    path = tmp_path / f"{codec}.mp4"
    make_pattern_video(path, duration_s=3.0, fps=30, codec=codec, size=(256, 144), gop_s=1.0)
    assert_same_batches(decode_every_segment(path, "cuda"), decode_every_segment(path, "none"))
