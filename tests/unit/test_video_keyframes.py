"""Keyframes mode decodes only the keyframes it picks, and picks what a full decode's keyframes give."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import threading

import numpy as np
import pytest

import engine.video.decode as decode_module
import engine.video.keyframes as keyframes_module
import engine.video.scaling as scaling_module
from engine.video import decode_segment, plan_segments, probe_video
from engine.video.keyframes import (
    KeyframeUnavailableError,
    keyframe_for_each_target,
    split_into_runs,
)
from tests.media import (
    decode_reference_frames,
    make_pattern_video,
    pick_reference_frames,
    remux_with_leading_cut,
)

OUTPUT_SIZE = (16, 24)

CASES = {
    "h264-mp4-bframes": {"name": "v.mp4"},
    "hevc-mp4": {"name": "v.mp4", "codec": "hevc"},
    "h264-mov-2997": {"name": "v.mov", "fps": 29.97},
    "h264-vfr": {"name": "v.mp4", "vfr": True},
    "h264-mpegts": {"name": "v.ts"},
    "hevc-mpegts": {"name": "v.ts", "codec": "hevc"},
    "h264-open-gop": {"name": "v.mp4", "open_gop": True},
    "hevc-open-gop-mkv": {"name": "v.mkv", "codec": "hevc", "open_gop": True},
    "h264-rotated-90": {"name": "v.mp4", "rotation": 90},
}


def decode_segments(path, probe, interval_ms, segment_length_ms, threads=1):
    """(sample times, timestamps, frames) of every segment in keyframes mode, concatenated."""
    batches = [
        decode_segment(
            str(path), probe, segment, interval_ms, OUTPUT_SIZE, mode="keyframes", threads=threads
        )
        for segment in plan_segments(probe, segment_length_ms)
    ]
    return (
        [t for b in batches for t in b.sample_times_ms],
        [t for b in batches for t in b.timestamps_ms],
        np.concatenate([b.frames for b in batches]),
    )


def forbid_sequential_decode(monkeypatch):
    def refuse(self, selective):
        raise AssertionError("keyframes mode fell back to decoding the whole segment")

    monkeypatch.setattr(decode_module._SegmentDecoder, "_pick_sequentially", refuse)


def count_sequential_decodes(monkeypatch) -> list:
    """One entry per segment decoded the sequential way (the fallback of keyframes mode)."""
    calls = []
    pick_sequentially = decode_module._SegmentDecoder._pick_sequentially

    def counting(self, selective):
        calls.append(selective)
        return pick_sequentially(self, selective)

    monkeypatch.setattr(decode_module._SegmentDecoder, "_pick_sequentially", counting)
    return calls


def force_sequential_decode(monkeypatch):
    def unavailable(*args, **kwargs):
        raise KeyframeUnavailableError("forced by the test")

    monkeypatch.setattr(decode_module, "decode_keyframes", unavailable)


def record_decoded_packets(monkeypatch) -> list:
    """Every packet the keyframes path sends to the decoder, as (is_keyframe, pts)."""
    sent = []
    decode_alone = keyframes_module._decode_alone

    def recording(codec_context, packet, clock, keyframe_ms):
        sent.append((packet.is_keyframe, clock.to_ms(packet.pts)))
        return decode_alone(codec_context, packet, clock, keyframe_ms)

    monkeypatch.setattr(keyframes_module, "_decode_alone", recording)
    return sent


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_keyframe_picks_equal_a_brute_force_decode_of_all_keyframes(tmp_path, monkeypatch, case):
    options = dict(CASES[case])
    path = tmp_path / options.pop("name")
    codec_size = (64, 48) if options.get("codec") == "hevc" else (48, 32)
    make_pattern_video(path, duration_s=3.0, size=codec_size, gop_s=0.5, **options)
    probe = probe_video(str(path))
    keyframes = [frame for frame in decode_reference_frames(path, OUTPUT_SIZE) if frame.is_keyframe]
    assert [frame.time_ms for frame in keyframes] == list(probe.keyframes_ms)
    forbid_sequential_decode(monkeypatch)
    sent = record_decoded_packets(monkeypatch)
    # Every keyframe (two decoders of three keyframes each), distant ones, short segments.
    for interval_ms, segment_length_ms, threads in (
        (250, 10**9, 2),
        (1300, 10**9, 1),
        (400, 1000, 1),
    ):
        sent.clear()
        sample_times_ms, timestamps_ms, frames = decode_segments(
            path, probe, interval_ms, segment_length_ms, threads
        )
        expected = pick_reference_frames(keyframes, sample_times_ms)
        assert timestamps_ms == [frame.time_ms for frame in expected]
        assert np.array_equal(frames, np.stack([frame.rgb for frame in expected]))
        # Only keyframe packets reach the decoder, each picked keyframe once per segment.
        assert all(is_keyframe for is_keyframe, _ in sent)
        assert len(sent) == len(set(sent)) and {ms for _, ms in sent} == set(timestamps_ms)


def test_keyframes_path_equals_the_sequential_keyframes_decode(tmp_path, monkeypatch):
    path = tmp_path / "v.mp4"
    make_pattern_video(path, duration_s=3.0, size=(48, 32), gop_s=0.5)
    probe = probe_video(str(path))
    fast = decode_segments(path, probe, 200, 1000)
    force_sequential_decode(monkeypatch)
    sequential = decode_segments(path, probe, 200, 1000)
    assert fast[0] == sequential[0] and fast[1] == sequential[1]
    assert np.array_equal(fast[2], sequential[2])


def test_a_probe_that_does_not_match_the_file_falls_back_to_the_same_picks(tmp_path, monkeypatch):
    """A keyframe the probe lists but the file lacks: the sequential decode decides the picks."""
    path = tmp_path / "v.mp4"
    make_pattern_video(path, duration_s=2.0, size=(48, 32), gop_s=1.0)
    probe = probe_video(str(path))
    wrong = dataclasses.replace(probe, keyframes_ms=(*probe.keyframes_ms, 500))
    fallbacks = count_sequential_decodes(monkeypatch)
    got = decode_segments(path, wrong, 250, 10**9)
    assert fallbacks == [False]
    force_sequential_decode(monkeypatch)
    expected = decode_segments(path, probe, 250, 10**9)
    assert got[1] == expected[1] == [0, 0, 0, 0, 1000, 1000, 1000, 1000]
    assert np.array_equal(got[2], expected[2])


def test_edit_list_hiding_the_first_keyframe_falls_back_to_the_sequential_decode(
    tmp_path, monkeypatch
):
    source, path = tmp_path / "src.mp4", tmp_path / "trimmed.mp4"
    make_pattern_video(source, duration_s=3.0, fps=30, size=(48, 32), gop_s=1.0)
    remux_with_leading_cut(source, path, cut_frames=5)
    probe = probe_video(str(path))
    assert probe.keyframes_ms[0] == 0  # listed, although the first shown frame is no keyframe
    fallbacks = count_sequential_decodes(monkeypatch)
    got = decode_segments(path, probe, 300, 10**9)
    assert fallbacks == [False]
    force_sequential_decode(monkeypatch)
    expected = decode_segments(path, probe, 300, 10**9)
    assert got[1] == expected[1]
    assert np.array_equal(got[2], expected[2])


def test_distant_keyframes_are_sought_and_adjacent_ones_read_on(tmp_path, monkeypatch):
    path = tmp_path / "v.mp4"
    make_pattern_video(path, duration_s=4.0, size=(48, 32), gop_s=0.5)
    probe = probe_video(str(path))
    seeks = []
    seek = keyframes_module._KeyframeReader._seek

    def counting(self, time_ms):
        seeks.append(time_ms)
        return seek(self, time_ms)

    monkeypatch.setattr(keyframes_module._KeyframeReader, "_seek", counting)
    segment = plan_segments(probe, 10**9)[0]
    decode_segment(str(path), probe, segment, 500, OUTPUT_SIZE, mode="keyframes", threads=1)
    assert seeks == [0]  # every keyframe is needed: one seek, then read on
    seeks.clear()
    batch = decode_segment(
        str(path), probe, segment, 1500, OUTPUT_SIZE, mode="keyframes", threads=1
    )
    assert batch.timestamps_ms == [0, 1500, 3000]
    assert seeks == [0, 1500, 3000]  # keyframes in between are skipped by seeking
    seeks.clear()
    parallel = decode_segment(
        str(path), probe, segment, 500, OUTPUT_SIZE, mode="keyframes", threads=2
    )
    assert parallel.timestamps_ms == list(range(0, 4000, 500))
    assert sorted(seeks) == [0, 2000]  # two decoders, each reading on through its half


def test_parallel_keyframe_decoders_give_the_same_picks(tmp_path, monkeypatch):
    path = tmp_path / "v.mkv"
    make_pattern_video(path, duration_s=4.0, size=(48, 32), gop_s=0.3)
    probe = probe_video(str(path))
    segment = plan_segments(probe, 10**9)[0]
    batches = [
        decode_segment(str(path), probe, segment, 100, OUTPUT_SIZE, mode="keyframes", threads=n)
        for n in (1, 3, 0)
    ]
    for batch in batches[1:]:
        assert batch.timestamps_ms == batches[0].timestamps_ms
        assert np.array_equal(batch.frames, batches[0].frames)


def test_keyframe_runs_are_contiguous_and_balanced():
    wanted = list(range(10))
    assert split_into_runs(wanted, 1, 3) == [wanted]
    assert split_into_runs(wanted, 2, 3) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert split_into_runs(wanted, 8, 3) == [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9]]
    assert split_into_runs([7, 8], 4, 3) == [[7, 8]]


def test_only_picked_frames_are_converted(tmp_path, monkeypatch):
    path = tmp_path / "v.mp4"
    make_pattern_video(path, duration_s=3.0, size=(48, 32), gop_s=1.0)
    probe = probe_video(str(path))
    converted = []
    convert = scaling_module.UprightScaler.convert

    def counting(self, frame):
        converted.append(frame.pts)
        return convert(self, frame)

    monkeypatch.setattr(scaling_module.UprightScaler, "convert", counting)
    segment = plan_segments(probe, 10**9)[0]
    for mode in ("keyframes", "accurate"):
        converted.clear()
        batch = decode_segment(str(path), probe, segment, 200, OUTPUT_SIZE, mode=mode)
        assert len(batch) == 15
        assert len(converted) == len(set(converted)) == len(set(batch.timestamps_ms))


def test_each_target_takes_the_latest_keyframe_at_or_before_it():
    keyframes_ms = (0, 2000, 4000)
    assert keyframe_for_each_target(keyframes_ms, [0, 1999, 2000, 3999, 9000]) == [
        0,
        0,
        2000,
        2000,
        4000,
    ]
    assert keyframe_for_each_target((500, 1000), [0, 700]) == [500, 500]
    with pytest.raises(KeyframeUnavailableError):
        keyframe_for_each_target((), [0])


@pytest.fixture
def served_directory(tmp_path):
    """(directory, base URL): a plain HTTP server without Range support, like a simple proxy."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(tmp_path))
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize("name", ["v.mp4", "v.ts"])
def test_keyframes_over_http_match_the_local_file(served_directory, monkeypatch, name):
    directory, base_url = served_directory
    make_pattern_video(directory / name, duration_s=3.0, size=(48, 32), gop_s=0.5)
    probe = probe_video(str(directory / name))
    local = decode_segments(directory / name, probe, 1200, 1000)
    forbid_sequential_decode(monkeypatch)
    remote = decode_segments(f"{base_url}/{name}", probe, 1200, 1000)
    assert remote[1] == local[1] == [0, 1000, 2000]
    assert np.array_equal(remote[2], local[2])
