"""probe_video reports Rekognition's VideoMetadata, the keyframe index and rotation, or a clear error."""

from __future__ import annotations

import av
import numpy as np
import pytest

from engine.api.wire import video_metadata_to_wire
from engine.video import VideoError, probe_video
from tests.media import decode_reference_frames, make_colour_video, make_pattern_video

TWO_COLOURS = [("red", 1.0), ("blue", 1.0)]


@pytest.mark.parametrize(
    "name, codec, expected_codec",
    [
        ("v.mp4", "h264", "h264"),
        ("v.mov", "h264", "h264"),
        ("v.mp4", "hevc", "hevc"),
        ("v.mov", "hevc", "hevc"),
    ],
)
def test_metadata_of_mp4_and_mov(tmp_path, name, codec, expected_codec):
    path = tmp_path / name
    truth = make_colour_video(path, TWO_COLOURS, fps=30, codec=codec, size=(80, 48))
    probe = probe_video(str(path))
    metadata = probe.metadata
    assert metadata.codec == expected_codec
    assert metadata.format == "QuickTime / MOV"
    assert metadata.duration_ms == truth.duration_ms == 2000
    assert metadata.frame_rate == pytest.approx(30.0)
    assert (metadata.frame_width, metadata.frame_height) == (80, 48)
    assert metadata.color_range == "LIMITED"
    assert probe.rotation_degrees == 0 and probe.start_ms == 0
    assert probe.keyframes_ms == (0, 1000)
    assert video_metadata_to_wire(metadata)["Codec"] == expected_codec


def test_ntsc_frame_rate_and_keyframe_times(tmp_path):
    path = tmp_path / "ntsc.mp4"
    truth = make_colour_video(path, [("green", 3.0)], fps=29.97, gop_s=1.0)
    probe = probe_video(str(path))
    assert probe.metadata.frame_rate == pytest.approx(30000 / 1001, abs=1e-6)
    assert probe.metadata.duration_ms == truth.duration_ms == 3003
    assert probe.keyframes_ms == (0, 1001, 2002)


def test_variable_frame_rate_uses_frames_over_duration(tmp_path):
    path = tmp_path / "vfr.mp4"
    truth = make_colour_video(path, [("red", 2.0), ("white", 2.0)], vfr=True, seed=3)
    probe = probe_video(str(path))
    frames = len(truth.frame_times_ms)
    assert (
        abs(probe.metadata.duration_ms - truth.duration_ms) <= 100
    )  # the last frame's length is a guess
    assert probe.metadata.frame_rate == pytest.approx(
        frames * 1000 / probe.metadata.duration_ms, rel=1e-6
    )
    assert set(probe.keyframes_ms) <= set(truth.frame_times_ms)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_reports_the_displayed_size(tmp_path, rotation):
    path = tmp_path / "phone.mp4"
    make_colour_video(path, [(("red", "blue"), 1.0)], size=(64, 36), rotation=rotation)
    probe = probe_video(str(path))
    assert probe.rotation_degrees == rotation
    expected = (36, 64) if rotation in (90, 270) else (64, 36)
    assert (probe.metadata.frame_width, probe.metadata.frame_height) == expected


def test_portrait_phone_matrix_reads_as_270(tmp_path):
    """A display matrix rotating by -90 degrees (what portrait phone recordings carry) is 270 CCW."""
    path = tmp_path / "phone.mov"
    make_colour_video(path, [("red", 0.5)], size=(64, 36), rotation=-90)
    probe = probe_video(str(path))
    assert probe.rotation_degrees == 270
    assert (probe.metadata.frame_width, probe.metadata.frame_height) == (36, 64)


def test_non_multiple_of_16_size(tmp_path):
    path = tmp_path / "odd.mp4"
    make_colour_video(path, [("yellow", 1.0)], size=(102, 58))
    metadata = probe_video(str(path)).metadata
    assert (metadata.frame_width, metadata.frame_height) == (102, 58)


def test_full_range_stream(tmp_path):
    path = tmp_path / "full.mp4"
    make_colour_video(path, [("black", 0.5)], full_range=True)
    assert probe_video(str(path)).metadata.color_range == "FULL"


def test_late_first_frame_shifts_the_timeline_to_zero(tmp_path):
    path = tmp_path / "late.mp4"
    make_colour_video(path, [("red", 1.0), ("blue", 1.0)], fps=25, start_s=2.0)
    probe = probe_video(str(path))
    assert probe.start_ms == 2000
    assert probe.keyframes_ms == (0, 1000)
    assert probe.metadata.duration_ms == 2000


@pytest.mark.parametrize("codec, bframes", [("h264", True), ("h264", False), ("hevc", True)])
def test_keyframe_index_matches_what_a_full_decode_sees(tmp_path, codec, bframes):
    path = tmp_path / "k.mp4"
    make_pattern_video(
        path, duration_s=4.0, fps=30, codec=codec, size=(64, 48), gop_s=0.7, bframes=bframes
    )
    probe = probe_video(str(path))
    decoded = decode_reference_frames(path, (8, 8))
    assert len(decoded) == 120
    assert probe.keyframes_ms == tuple(frame.time_ms for frame in decoded if frame.is_keyframe)
    assert probe.metadata.duration_ms == round(len(decoded) * 1000 / 30)


def test_not_a_video_raises_a_readable_error(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is a shopping list, not a movie\n" * 50)
    with pytest.raises(VideoError, match="not a video"):
        probe_video(str(path))


def test_zero_byte_file_raises(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        probe_video(str(path))


def test_missing_file_raises(tmp_path):
    with pytest.raises(VideoError, match="does not exist"):
        probe_video(str(tmp_path / "nowhere.mp4"))


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "sound.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for index in range(20):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 16000, index * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(VideoError, match="no video stream"):
        probe_video(str(path))


def test_url_query_string_never_appears_in_errors(tmp_path):
    with pytest.raises(VideoError) as raised:
        probe_video("http://127.0.0.1:9/bucket/clip.mp4?X-Amz-Signature=secret")
    assert "secret" not in str(raised.value) and "clip.mp4" in str(raised.value)


@pytest.mark.parametrize(
    "suffix, message",
    [("mkv", "ends before any video data"), ("mp4", "has no video stream")],
)
def test_video_track_without_frames(tmp_path, suffix, message):
    path = tmp_path / f"hollow.{suffix}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height = 64, 48
        container.start_encoding()  # header written, no frame
    assert path.stat().st_size > 0
    with pytest.raises(VideoError, match=message):
        probe_video(str(path))


def test_frames_over_the_pixel_limit_are_refused(tmp_path):
    path = tmp_path / "big.mp4"
    make_colour_video(path, [("red", 0.2)], size=(128, 96))
    assert probe_video(str(path), max_frame_pixels=128 * 96).metadata.frame_width == 128
    with pytest.raises(VideoError, match="128x96 pixels; at most 12287 pixels"):
        probe_video(str(path), max_frame_pixels=128 * 96 - 1)


def test_probe_reads_packets_without_decoding_frames(tmp_path, monkeypatch):
    """Only the first keyframe packet (it carries the display matrix) may reach a decoder."""
    path = tmp_path / "v.mp4"
    make_colour_video(path, [("red", 1.0), ("blue", 1.0)], gop_s=0.5)
    sent = []
    real_decode = av.video.codeccontext.VideoCodecContext.decode

    def counting_decode(self, packet=None):
        sent.append(packet)
        return real_decode(self, packet)

    monkeypatch.setattr(av.video.codeccontext.VideoCodecContext, "decode", counting_decode)
    monkeypatch.setattr(av.container.InputContainer, "decode", None)  # no decode() shortcut
    probe = probe_video(str(path))
    assert probe.keyframes_ms == (0, 500, 1000, 1500)
    assert len([packet for packet in sent if packet is not None]) == 1


def test_rotation_is_read_when_the_stream_starts_late(tmp_path):
    path = tmp_path / "late_phone.mov"
    make_colour_video(path, [("red", 1.0)], size=(64, 36), rotation=90, start_s=3.0)
    probe = probe_video(str(path))
    assert probe.rotation_degrees == 90 and probe.start_ms == 3000
    assert (probe.metadata.frame_width, probe.metadata.frame_height) == (36, 64)
