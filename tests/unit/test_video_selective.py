"""Selective decode: skips packets only where provably safe, and never changes a pick."""

from __future__ import annotations

import av
import numpy as np
import pytest

from engine.video import decode_segment, plan_segments, probe_video
from engine.video.selective import PacketSelector, avcc_length_size, inspect_h264_packet
from engine.video.timeline import StreamClock
from tests.media import make_pattern_video


def selector_counts(path, targets_ms) -> tuple[int, int]:
    """(packets sent, packets seen) when selecting for `targets_ms` over the whole file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        length_size = avcc_length_size(stream.codec_context)
        if length_size is None:
            return -1, -1
        selector = PacketSelector(
            StreamClock(stream.time_base, stream.start_time), targets_ms, length_size
        )
        sent = sum(1 for _ in selector.select(container.demux(stream)))
        return sent, selector.seen_packets


def test_h264_closed_gops_skip_unreferenced_and_trailing_packets(tmp_path):
    path = tmp_path / "v.mp4"
    make_pattern_video(path, duration_s=4.0, fps=30, size=(64, 48), gop_s=2.0)
    sent, seen = selector_counts(path, [0, 1000, 2000, 3000])
    assert seen == 120
    assert 0 < sent < seen * 0.8


def test_selection_stops_reading_after_the_last_target(tmp_path):
    path = tmp_path / "v.mp4"
    make_pattern_video(path, duration_s=6.0, fps=30, size=(64, 48), gop_s=1.0)
    sent, seen = selector_counts(path, [0, 500])
    assert seen == 30  # the first GOP only: the next IDR is past the last target
    assert sent <= 16


def test_open_gops_and_hevc_pass_through(tmp_path):
    open_gop = tmp_path / "open.mp4"
    make_pattern_video(open_gop, duration_s=3.0, fps=30, size=(64, 48), gop_s=1.0, open_gop=True)
    sent, seen = selector_counts(open_gop, [0, 1000, 2000])
    assert sent == seen == 90
    hevc = tmp_path / "hevc.mp4"
    make_pattern_video(hevc, duration_s=1.0, fps=30, codec="hevc", size=(64, 48))
    with av.open(str(hevc)) as container:
        assert avcc_length_size(container.streams.video[0].codec_context) is None


def test_nal_parsing_reads_reference_and_idr_flags():
    idr = (5).to_bytes(4, "big") + bytes([0x65, 1, 2, 3, 4])
    non_reference_b = (3).to_bytes(4, "big") + bytes([0x01, 9, 9])
    sei_then_p = (
        (2).to_bytes(4, "big") + bytes([0x06, 0]) + (2).to_bytes(4, "big") + bytes([0x41, 7])
    )
    assert inspect_h264_packet(idr, 4).is_idr
    assert inspect_h264_packet(idr, 4).is_reference
    assert not inspect_h264_packet(non_reference_b, 4).is_reference
    assert inspect_h264_packet(sei_then_p, 4).is_reference
    assert inspect_h264_packet(idr[:-1], 4) is None  # truncated NAL
    assert inspect_h264_packet((2).to_bytes(4, "big") + bytes([0x06, 0]), 4) is None  # no slice


@pytest.mark.parametrize("interval_ms", [1000, 170])
def test_selective_and_full_decode_agree(tmp_path, interval_ms):
    path = tmp_path / "v.mov"
    make_pattern_video(path, duration_s=5.0, fps=29.97, size=(64, 48), gop_s=1.5)
    probe = probe_video(str(path))
    for segment in plan_segments(probe, 1400):
        fast = decode_segment(str(path), probe, segment, interval_ms, (16, 24), selective=True)
        full = decode_segment(str(path), probe, segment, interval_ms, (16, 24), selective=False)
        assert fast.timestamps_ms == full.timestamps_ms
        assert np.array_equal(fast.frames, full.frames)


def test_gops_too_large_to_buffer_are_decoded_in_full(tmp_path, monkeypatch):
    path = tmp_path / "v.mp4"
    make_pattern_video(path, duration_s=3.0, fps=30, size=(64, 48), gop_s=1.0)
    probe = probe_video(str(path))
    segment = plan_segments(probe, 10**9)[0]
    expected = decode_segment(str(path), probe, segment, 300, (16, 24), selective=False)
    monkeypatch.setattr("engine.video.selective.MAX_BUFFERED_GOP_BYTES", 2000)
    sent, seen = selector_counts(path, [0, 1000, 2000])
    assert sent == seen == 90
    got = decode_segment(str(path), probe, segment, 300, (16, 24), selective=True)
    assert got.timestamps_ms == expected.timestamps_ms
    assert np.array_equal(got.frames, expected.frames)
