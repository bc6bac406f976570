"""decode_segment picks exactly the frames a brute-force full decode picks, upright and small."""

from __future__ import annotations

import numpy as np
import pytest

from engine.video import (
    FrameBatch,
    Segment,
    VideoError,
    decode_segment,
    plan_segments,
    probe_video,
    sample_times_ms,
)
from tests.media import (
    closest_colour,
    decode_reference_frames,
    make_colour_video,
    make_pattern_video,
    pick_reference_frames,
    remux_with_leading_cut,
)

OUTPUT_SIZE = (24, 40)  # (height, width): not square, so a swapped axis would show


def decode_all_segments(path, probe, segment_length_ms, interval_ms, mode="accurate") -> FrameBatch:
    batches = [
        decode_segment(str(path), probe, segment, interval_ms, OUTPUT_SIZE, mode=mode)
        for segment in plan_segments(probe, segment_length_ms)
    ]
    return FrameBatch(
        frames=np.concatenate([b.frames for b in batches]),
        timestamps_ms=[t for b in batches for t in b.timestamps_ms],
        sample_times_ms=[t for b in batches for t in b.sample_times_ms],
    )


def assert_matches_reference(path, batch: FrameBatch, reference_frames) -> None:
    expected = pick_reference_frames(reference_frames, batch.sample_times_ms)
    assert batch.timestamps_ms == [frame.time_ms for frame in expected]
    for index, frame in enumerate(expected):
        assert np.array_equal(batch.frames[index], frame.rgb), (
            f"pixels differ at sample {batch.sample_times_ms[index]} ms"
        )


PATTERN_CASES = {
    "h264-mp4-bframes": {"name": "p.mp4", "codec": "h264", "fps": 30},
    "h264-mov-2997": {"name": "p.mov", "codec": "h264", "fps": 29.97},
    "hevc-mp4": {"name": "p.mp4", "codec": "hevc", "fps": 25},
    "h264-vfr": {"name": "p.mp4", "codec": "h264", "vfr": True},
    "h264-late-start": {"name": "p.mp4", "codec": "h264", "fps": 24, "start_s": 1.3},
    "h264-no-bframes-short-gop": {"name": "p.mp4", "fps": 30, "bframes": False, "gop_s": 0.5},
}


@pytest.mark.parametrize("case", list(PATTERN_CASES), ids=list(PATTERN_CASES))
def test_segments_pick_the_same_frames_as_a_full_decode(tmp_path, case):
    options = dict(PATTERN_CASES[case])
    path = tmp_path / options.pop("name")
    make_pattern_video(
        path, duration_s=5.0, size=(72, 40), gop_s=options.pop("gop_s", 1.0), **options
    )
    probe = probe_video(str(path))
    reference = decode_reference_frames(path, OUTPUT_SIZE)
    whole = decode_all_segments(path, probe, 10**9, 333)
    assert whole.sample_times_ms == list(range(0, probe.metadata.duration_ms, 333))
    assert_matches_reference(path, whole, reference)
    for segment_length_ms in (1000, 2300):
        pieces = decode_all_segments(path, probe, segment_length_ms, 333)
        assert pieces.sample_times_ms == whole.sample_times_ms
        assert pieces.timestamps_ms == whole.timestamps_ms
        assert np.array_equal(pieces.frames, whole.frames)


def test_low_frame_rate_returns_one_frame_for_several_sample_times(tmp_path):
    path = tmp_path / "slow.mp4"
    make_pattern_video(path, duration_s=3.0, fps=2, size=(48, 32), gop_s=1.0)
    probe = probe_video(str(path))
    batch = decode_all_segments(path, probe, 1000, 100)
    assert batch.sample_times_ms[:6] == [0, 100, 200, 300, 400, 500]
    assert batch.timestamps_ms[:6] == [0, 0, 0, 0, 0, 500]
    assert_matches_reference(path, batch, decode_reference_frames(path, OUTPUT_SIZE))


def test_colour_video_samples_show_the_colour_on_screen(tmp_path):
    path = tmp_path / "colours.mp4"
    truth = make_colour_video(
        path,
        [("red", 0.9), ("green", 1.3), ("blue", 0.4), ("white", 1.1), ("yellow", 0.8)],
        fps=29.97,
        gop_s=2.0,
    )
    probe = probe_video(str(path))
    batch = decode_all_segments(path, probe, 1500, 100)
    frame_interval_ms = 1000 / 29.97
    assert len(batch) == len(range(0, truth.duration_ms, 100))
    for sample_ms, timestamp_ms, frame in zip(
        batch.sample_times_ms, batch.timestamps_ms, batch.frames
    ):
        assert closest_colour(frame) == truth.colour_at(sample_ms), f"at {sample_ms} ms"
        assert timestamp_ms == truth.frame_time_at(sample_ms)
        assert 0 <= sample_ms - timestamp_ms < frame_interval_ms


def test_vfr_timestamps_are_the_real_frame_times(tmp_path):
    path = tmp_path / "vfr.mp4"
    truth = make_colour_video(path, [("red", 1.0), ("blue", 1.0), ("green", 1.0)], vfr=True, seed=7)
    probe = probe_video(str(path))
    batch = decode_all_segments(path, probe, 1000, 50)
    assert set(batch.timestamps_ms) <= set(truth.frame_times_ms)
    for sample_ms, timestamp_ms, frame in zip(
        batch.sample_times_ms, batch.timestamps_ms, batch.frames
    ):
        assert timestamp_ms == truth.frame_time_at(sample_ms)
        assert closest_colour(frame) == truth.colour_at(sample_ms)


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_rotated_phone_video_comes_out_upright(tmp_path, rotation):
    path = tmp_path / f"phone{rotation}.mp4"
    make_colour_video(
        path, [(("red", "blue"), 1.0), (("green", "white"), 1.0)], size=(64, 36), rotation=rotation
    )
    probe = probe_video(str(path))
    batch = decode_all_segments(path, probe, 1000, 500)
    assert batch.frames.shape == (4, *OUTPUT_SIZE, 3)
    tops = [closest_colour(frame[: OUTPUT_SIZE[0] // 3]) for frame in batch.frames]
    bottoms = [closest_colour(frame[-OUTPUT_SIZE[0] // 3 :]) for frame in batch.frames]
    assert tops == ["red", "red", "green", "green"]
    assert bottoms == ["blue", "blue", "white", "white"]


def test_keyframes_mode_snaps_to_the_latest_keyframe(tmp_path):
    path = tmp_path / "k.mp4"
    make_pattern_video(path, duration_s=4.0, fps=30, size=(48, 32), gop_s=0.5)
    probe = probe_video(str(path))
    reference = decode_reference_frames(path, OUTPUT_SIZE)
    keyframes = [frame for frame in reference if frame.is_keyframe]
    batch = decode_all_segments(path, probe, 1000, 200, mode="keyframes")
    expected = pick_reference_frames(keyframes, batch.sample_times_ms)
    assert batch.timestamps_ms == [frame.time_ms for frame in expected]
    assert all(0 <= s - t < 500 for s, t in zip(batch.sample_times_ms, batch.timestamps_ms))
    for got, want in zip(batch.frames, expected):
        assert np.array_equal(got, want.rgb)


def test_output_size_is_respected_for_odd_source_sizes(tmp_path):
    path = tmp_path / "odd.mov"
    make_colour_video(path, [("magenta", 1.0)], size=(102, 58))
    probe = probe_video(str(path))
    batch = decode_segment(str(path), probe, plan_segments(probe, 1000)[0], 250, (17, 31))
    assert batch.frames.shape == (4, 17, 31, 3) and batch.frames.dtype == np.uint8
    assert all(closest_colour(frame) == "magenta" for frame in batch.frames)


def test_segment_without_sample_times_returns_an_empty_batch(tmp_path):
    path = tmp_path / "a.mp4"
    make_colour_video(path, [("red", 1.0)])
    probe = probe_video(str(path))
    batch = decode_segment(
        str(path), probe, Segment(index=1, start_ms=10, stop_ms=90), 100, OUTPUT_SIZE
    )
    assert len(batch) == 0 and batch.frames.shape == (0, *OUTPUT_SIZE, 3)


def test_bad_arguments_are_rejected(tmp_path):
    path = tmp_path / "a.mp4"
    make_colour_video(path, [("red", 1.0)])
    probe = probe_video(str(path))
    segment = plan_segments(probe, 1000)[0]
    with pytest.raises(ValueError, match="mode"):
        decode_segment(str(path), probe, segment, 100, OUTPUT_SIZE, mode="fast")
    with pytest.raises(ValueError, match="output_size"):
        decode_segment(str(path), probe, segment, 100, (0, 10))


def test_file_that_vanished_or_became_garbage_raises_video_error(tmp_path):
    path = tmp_path / "a.mp4"
    make_colour_video(path, [("red", 1.0)])
    probe = probe_video(str(path))
    segment = plan_segments(probe, 1000)[0]
    path.write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        decode_segment(str(path), probe, segment, 100, OUTPUT_SIZE)
    path.write_bytes(b"not a video at all" * 100)
    with pytest.raises(VideoError, match="not a video"):
        decode_segment(str(path), probe, segment, 100, OUTPUT_SIZE)


def test_truncated_file_decodes_what_is_there_or_fails_cleanly(tmp_path):
    path = tmp_path / "cut.mkv"  # Matroska keeps its index optional, so a cut file still opens
    make_colour_video(path, [("red", 1.0), ("blue", 1.0)], size=(64, 48))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    try:
        probe = probe_video(str(path))
    except VideoError:
        return
    for segment in plan_segments(probe, 500):
        try:
            batch = decode_segment(str(path), probe, segment, 250, OUTPUT_SIZE)
        except VideoError:
            continue
        assert batch.sample_times_ms == sample_times_ms(segment, 250, probe.metadata.duration_ms)


def test_edit_list_hiding_the_first_frames(tmp_path):
    source, path = tmp_path / "src.mp4", tmp_path / "trimmed.mp4"
    make_pattern_video(source, duration_s=4.0, fps=30, size=(48, 32), gop_s=2.0)
    remux_with_leading_cut(source, path, cut_frames=10)
    probe = probe_video(str(path))
    reference = decode_reference_frames(path, OUTPUT_SIZE)
    assert len(reference) == 110 and reference[0].time_ms == 0
    assert probe.metadata.duration_ms == 3667
    for segment_length_ms in (500, 10**9):
        batch = decode_all_segments(path, probe, segment_length_ms, 100)
        assert batch.sample_times_ms == list(range(0, 3667, 100))
        assert_matches_reference(path, batch, reference)


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_open_gop_streams_decode_exactly(tmp_path, codec):
    path = tmp_path / "open.mp4"
    make_pattern_video(
        path, duration_s=4.0, fps=30, codec=codec, size=(64, 48), gop_s=1.0, open_gop=True
    )
    probe = probe_video(str(path))
    reference = decode_reference_frames(path, OUTPUT_SIZE)
    for segment_length_ms in (500, 10**9):
        assert_matches_reference(
            path, decode_all_segments(path, probe, segment_length_ms, 100), reference
        )


def test_corrupted_bytes_never_crash_the_worker(tmp_path):
    """Flipped bytes in the middle of the media data: frames or VideoError, nothing else."""
    path = tmp_path / "damaged.mp4"
    make_pattern_video(path, duration_s=3.0, fps=30, size=(64, 48), gop_s=1.0)
    data = bytearray(path.read_bytes())
    generator = np.random.default_rng(5)
    for position in generator.integers(len(data) // 4, len(data) * 3 // 4, size=200):
        data[position] ^= 0xFF
    path.write_bytes(bytes(data))
    try:
        probe = probe_video(str(path))
    except VideoError:
        return
    for segment in plan_segments(probe, 1000):
        try:
            batch = decode_segment(str(path), probe, segment, 250, OUTPUT_SIZE)
        except VideoError:
            continue
        assert batch.frames.shape[1:] == (*OUTPUT_SIZE, 3)
