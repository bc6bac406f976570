"""Selective decode: skips packets only where provably safe, and never changes a pick."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from engine.video import decode_segment, plan_segments, probe_video
from engine.video.nal import (
    ANNEX_B,
    NalFormat,
    inspect_h264_packet,
    inspect_hevc_packet,
    stream_nal_format,
)
from engine.video.selective import PacketSelector
from engine.video.timeline import StreamClock
from tests.media import decode_reference_frames, make_pattern_video, pick_reference_frames

OUTPUT_SIZE = (16, 24)


def selector_counts(path, targets_ms) -> tuple[int, int]:
    """(packets sent, packets seen) when selecting for `targets_ms` over the whole file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        nal_format = stream_nal_format(stream.codec_context)
        if nal_format is None:
            return -1, -1
        selector = PacketSelector(
            StreamClock(stream.time_base, stream.start_time), targets_ms, nal_format
        )
        sent = sum(1 for _ in selector.select(container.demux(stream)))
        return sent, selector.seen_packets


def assert_selective_is_exact(path, interval_ms, segment_length_ms) -> None:
    """Every segment: selective == full decode == brute-force reference, pixels and times."""
    probe = probe_video(str(path))
    reference = decode_reference_frames(path, OUTPUT_SIZE)
    for segment in plan_segments(probe, segment_length_ms):
        fast = decode_segment(str(path), probe, segment, interval_ms, OUTPUT_SIZE, selective=True)
        full = decode_segment(str(path), probe, segment, interval_ms, OUTPUT_SIZE, selective=False)
        expected = pick_reference_frames(reference, fast.sample_times_ms)
        assert fast.timestamps_ms == full.timestamps_ms == [f.time_ms for f in expected]
        assert np.array_equal(fast.frames, full.frames)
        assert np.array_equal(fast.frames, np.stack([f.rgb for f in expected]))


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


def test_open_gops_pass_through(tmp_path):
    for codec in ("h264", "hevc"):
        path = tmp_path / f"open-{codec}.mp4"
        make_pattern_video(
            path, duration_s=3.0, fps=30, codec=codec, size=(64, 48), gop_s=1.0, open_gop=True
        )
        sent, seen = selector_counts(path, [0, 1000, 2000])
        assert sent == seen == 90, codec


def test_stream_nal_format_reads_the_packaging(tmp_path):
    expected = {
        ("h264", "mp4"): NalFormat("h264", 4),
        ("hevc", "mp4"): NalFormat("hevc", 4),
        ("hevc", "mkv"): NalFormat("hevc", 4),
        ("hevc", "ts"): NalFormat("hevc", ANNEX_B),
        ("h264", "ts"): NalFormat("h264", ANNEX_B),
    }
    for (codec, suffix), nal_format in expected.items():
        path = tmp_path / f"{codec}.{suffix}"
        make_pattern_video(path, duration_s=0.2, fps=30, codec=codec, size=(64, 48))
        with av.open(str(path)) as container:
            assert stream_nal_format(container.streams.video[0].codec_context) == nal_format


def test_h264_nal_parsing_reads_reference_and_idr_flags():
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
    annex_b = b"\x00\x00\x00\x01\x09\xf0\x00\x00\x01\x01\x9a\x00\x00\x03\x01"
    assert not inspect_h264_packet(annex_b, ANNEX_B).is_reference
    assert inspect_h264_packet(b"\x07" + annex_b, ANNEX_B) is None  # junk before a start code


def hevc_nal(nal_type: int, temporal_id: int = 0, layer_id: int = 0, payload=b"\xaf\x11") -> bytes:
    header = bytes(
        [(nal_type << 1) | (layer_id >> 5), ((layer_id & 0x1F) << 3) | (temporal_id + 1)]
    )
    return header + payload


def length_prefixed(*units: bytes) -> bytes:
    return b"".join(len(unit).to_bytes(4, "big") + unit for unit in units)


def test_hevc_nal_parsing_reads_picture_types_and_sub_layers():
    trail_n, trail_r = hevc_nal(0), hevc_nal(1)
    assert not inspect_hevc_packet(length_prefixed(trail_n), 4).is_reference
    assert inspect_hevc_packet(length_prefixed(trail_r), 4).is_reference
    for non_reference_type in (2, 4, 6, 8, 10, 12, 14):
        assert not inspect_hevc_packet(
            length_prefixed(hevc_nal(non_reference_type)), 4
        ).is_reference
    idr_n_lp = inspect_hevc_packet(length_prefixed(hevc_nal(35), hevc_nal(20)), 4)  # AUD + IDR
    assert idr_n_lp.is_idr and idr_n_lp.is_reference and not idr_n_lp.may_have_leading
    assert inspect_hevc_packet(length_prefixed(hevc_nal(19)), 4).may_have_leading
    assert inspect_hevc_packet(length_prefixed(hevc_nal(7)), 4).is_leading
    cra = inspect_hevc_packet(length_prefixed(hevc_nal(21)), 4)
    assert cra.is_reference and not cra.is_idr
    assert inspect_hevc_packet(length_prefixed(hevc_nal(0, temporal_id=2)), 4).temporal_id == 2
    assert inspect_hevc_packet(length_prefixed(hevc_nal(0, layer_id=1)), 4) is None
    assert inspect_hevc_packet(length_prefixed(hevc_nal(22)), 4) is None  # reserved IRAP
    assert inspect_hevc_packet(length_prefixed(hevc_nal(39)), 4) is None  # SEI only: no picture
    annex_b = b"\x00\x00\x00\x01" + hevc_nal(35) + b"\x00\x00\x01" + hevc_nal(0)
    assert not inspect_hevc_packet(annex_b, ANNEX_B).is_reference


def fake_packet(data: bytes, pts: int, keyframe: bool = False) -> av.Packet:
    packet = av.Packet(data)
    packet.pts = packet.dts = pts
    packet.is_keyframe = keyframe
    return packet


def test_hevc_non_reference_pictures_of_lower_sub_layers_are_kept():
    """A TRAIL_N of sub-layer 0 may be referenced by sub-layer 1 pictures: only the top layer is skipped."""
    gop = [
        fake_packet(length_prefixed(hevc_nal(20)), 0, keyframe=True),
        fake_packet(length_prefixed(hevc_nal(0, temporal_id=0)), 1),
        fake_packet(length_prefixed(hevc_nal(0, temporal_id=1)), 2),
        fake_packet(length_prefixed(hevc_nal(1, temporal_id=0)), 3),
        fake_packet(length_prefixed(hevc_nal(0, temporal_id=1)), 4),
        fake_packet(length_prefixed(hevc_nal(20)), 5, keyframe=True),
    ]
    clock = StreamClock(Fraction(1, 1000), 0)  # pts are ms
    selector = PacketSelector(clock, [0, 4], NalFormat("hevc", 4))
    assert [p.pts for p in selector.select(gop)] == [0, 1, 3, 4]


@pytest.mark.parametrize("interval_ms", [1000, 170])
def test_h264_selective_and_full_decode_agree(tmp_path, interval_ms):
    path = tmp_path / "v.mov"
    make_pattern_video(path, duration_s=5.0, fps=29.97, size=(64, 48), gop_s=1.5)
    assert_selective_is_exact(path, interval_ms, 1400)


@pytest.mark.parametrize("suffix", ["mp4", "mkv", "ts"])
def test_hevc_closed_gops_with_b_frames_skip_packets(tmp_path, suffix):
    path = tmp_path / f"v.{suffix}"
    make_pattern_video(path, duration_s=4.0, fps=30, codec="hevc", size=(64, 48), gop_s=2.0)
    sent, seen = selector_counts(path, [0, 1000, 2000, 3000])
    assert seen == 120
    assert 0 < sent < seen * 0.8


@pytest.mark.parametrize(
    "suffix, interval_ms, segment_length_ms",
    [("mp4", 1000, 1400), ("mp4", 170, 10**9), ("ts", 333, 1000), ("mkv", 250, 1000)],
)
def test_hevc_selective_and_full_decode_agree(tmp_path, suffix, interval_ms, segment_length_ms):
    path = tmp_path / f"v.{suffix}"
    make_pattern_video(path, duration_s=4.0, fps=30, codec="hevc", size=(64, 48), gop_s=1.0)
    assert_selective_is_exact(path, interval_ms, segment_length_ms)


def test_h264_annex_b_in_mpeg_ts_is_selective_and_exact(tmp_path):
    path = tmp_path / "v.ts"
    make_pattern_video(path, duration_s=3.0, fps=30, size=(64, 48), gop_s=1.5)
    sent, seen = selector_counts(path, [0, 1000, 2000])
    assert 0 < sent < seen * 0.8
    assert_selective_is_exact(path, 500, 1000)


@pytest.mark.parametrize("interval_ms", [333, 50])
def test_hevc_leading_pictures_before_idr_are_decoded_when_on_screen(tmp_path, interval_ms):
    """IDR_W_RADL: the two frames shown before each keyframe are decoded after it."""
    path = tmp_path / "radl.mp4"
    make_pattern_video(
        path, duration_s=3.0, fps=30, codec="hevc", size=(64, 48), gop_s=1.0, leading_pictures=2
    )
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(container.streams.video[0]) if p.size]
        leading = [p for p in packets if inspect_hevc_packet(bytes(p), 4).is_leading]
    assert len(leading) == 4  # two before each of the keyframes at 1 s and 2 s
    sent, seen = selector_counts(path, [967])  # frame 29: a leading picture of the 2nd GOP
    assert sent < seen
    assert_selective_is_exact(path, interval_ms, 1000)


def test_gops_too_large_to_buffer_are_decoded_in_full(tmp_path, monkeypatch):
    path = tmp_path / "v.mp4"
    make_pattern_video(path, duration_s=3.0, fps=30, size=(64, 48), gop_s=1.0)
    probe = probe_video(str(path))
    segment = plan_segments(probe, 10**9)[0]
    expected = decode_segment(str(path), probe, segment, 300, OUTPUT_SIZE, selective=False)
    monkeypatch.setattr("engine.video.selective.MAX_BUFFERED_GOP_BYTES", 2000)
    sent, seen = selector_counts(path, [0, 1000, 2000])
    assert sent == seen == 90
    got = decode_segment(str(path), probe, segment, 300, OUTPUT_SIZE, selective=True)
    assert got.timestamps_ms == expected.timestamps_ms
    assert np.array_equal(got.frames, expected.frames)
