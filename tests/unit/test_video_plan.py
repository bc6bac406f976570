"""plan_segments / sample_times_ms: keyframe-aligned cover of [0, duration), one global sample grid."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.video import Segment, VideoProbe, plan_segments, probe_video, sample_times_ms
from engine.video.types import VideoMetadata
from tests.media import make_colour_video


def probe_with(keyframes_ms: list[int], duration_ms: int) -> VideoProbe:
    metadata = VideoMetadata(
        codec="h264",
        duration_ms=duration_ms,
        format="QuickTime / MOV",
        frame_rate=30.0,
        frame_height=360,
        frame_width=640,
        color_range="LIMITED",
    )
    return VideoProbe(
        metadata=metadata, keyframes_ms=tuple(keyframes_ms), start_ms=0, rotation_degrees=0
    )


@st.composite
def probes(draw) -> VideoProbe:
    duration_ms = draw(st.integers(min_value=1, max_value=120_000))
    later = draw(st.lists(st.integers(min_value=1, max_value=duration_ms + 500), max_size=60))
    return probe_with(sorted({0, *later}), duration_ms)


@settings(max_examples=200, deadline=None)
@given(probe=probes(), segment_length_ms=st.integers(min_value=1, max_value=200_000))
def test_segments_cover_the_video_and_start_on_keyframes(probe, segment_length_ms):
    segments = plan_segments(probe, segment_length_ms)
    assert segments[0].start_ms == 0
    assert segments[-1].stop_ms == probe.metadata.duration_ms
    assert [s.index for s in segments] == list(range(len(segments)))
    for previous, following in pairwise(segments):
        assert previous.stop_ms == following.start_ms
        assert following.start_ms in probe.keyframes_ms
        assert following.start_ms >= previous.start_ms + segment_length_ms
        # no keyframe was skipped that would have made an earlier, valid boundary
        assert not [
            k
            for k in probe.keyframes_ms
            if previous.start_ms + segment_length_ms <= k < following.start_ms
        ]
    assert all(s.duration_ms > 0 for s in segments)


@settings(max_examples=200, deadline=None)
@given(
    probe=probes(),
    segment_length_ms=st.integers(min_value=1, max_value=200_000),
    interval_ms=st.integers(min_value=1, max_value=5000),
)
def test_sample_times_do_not_depend_on_segment_length(probe, segment_length_ms, interval_ms):
    duration_ms = probe.metadata.duration_ms
    times = [
        t
        for s in plan_segments(probe, segment_length_ms)
        for t in sample_times_ms(s, interval_ms, duration_ms)
    ]
    assert times == list(range(0, duration_ms, interval_ms))


def test_boundaries_take_the_first_keyframe_at_or_after_the_wanted_time():
    probe = probe_with([0, 900, 2000, 2100, 4500, 6000], duration_ms=7000)
    assert plan_segments(probe, 1000) == [
        Segment(0, 0, 2000),
        Segment(1, 2000, 4500),
        Segment(2, 4500, 6000),
        Segment(3, 6000, 7000),
    ]
    assert plan_segments(probe, 900) == [
        Segment(0, 0, 900),
        Segment(1, 900, 2000),
        Segment(2, 2000, 4500),
        Segment(3, 4500, 6000),
        Segment(4, 6000, 7000),
    ]
    assert plan_segments(probe, 10_000) == [Segment(0, 0, 7000)]


def test_keyframes_at_or_past_the_end_make_no_empty_segment():
    probe = probe_with([0, 1000, 2000], duration_ms=2000)
    assert plan_segments(probe, 1000) == [Segment(0, 0, 1000), Segment(1, 1000, 2000)]


def test_sample_times_are_half_open_and_stop_at_the_duration():
    assert sample_times_ms(Segment(0, 0, 3000), 1000, 10_000) == [0, 1000, 2000]
    assert sample_times_ms(Segment(1, 1001, 3000), 1000, 10_000) == [2000]
    assert sample_times_ms(Segment(2, 3000, 9000), 1000, 5001) == [3000, 4000, 5000]
    assert sample_times_ms(Segment(3, 1, 999), 1000, 10_000) == []


def test_invalid_lengths_are_rejected():
    probe = probe_with([0], duration_ms=1000)
    with pytest.raises(ValueError):
        plan_segments(probe, 0)
    with pytest.raises(ValueError):
        sample_times_ms(Segment(0, 0, 1000), 0, 1000)


def test_plan_of_a_real_video_follows_its_keyframes(tmp_path):
    path = tmp_path / "v.mp4"
    make_colour_video(path, [("red", 2.0), ("blue", 2.5)], fps=29.97, gop_s=1.0)
    probe = probe_video(str(path))
    segments = plan_segments(probe, 1500)
    assert [(s.start_ms, s.stop_ms) for s in segments] == [
        (0, 2002),
        (2002, 4004),
        (4004, probe.metadata.duration_ms),
    ]
    for length_ms in range(1000, probe.metadata.duration_ms + 1000, 500):
        times = [
            t
            for s in plan_segments(probe, length_ms)
            for t in sample_times_ms(s, 1000, probe.metadata.duration_ms)
        ]
        assert times == [0, 1000, 2000, 3000, 4000]
