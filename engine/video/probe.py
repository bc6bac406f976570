"""Probe a video: container metadata, keyframe index and display rotation, without decoding it.

The planner needs the keyframe positions and the duration; the API needs Rekognition's
VideoMetadata. Both come from demuxing packets (reading compressed data only), so a long
video probes in I/O time, not decode time. The one exception is the display rotation, which
PyAV releases before 19 expose only on decoded frames: then exactly one frame is decoded.

Timeline convention (shared with plan and decode, see `timeline.py`): every `*_ms` value is
relative to the first displayed frame, which is at 0 ms. The one exception is
`VideoProbe.start_ms`, the container's own time of that first frame, kept for information.

This module knows nothing about Ray, jobs or the wire; it only reads a local path or an
http(s) URL that FFmpeg can open.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import pairwise

import av

from engine.video.limits import (
    DEFAULT_MAX_FRAME_PIXELS,
    PROBE_TIME_LIMIT_S,
    Deadline,
    check_frame_size,
    check_packet_size,
    packet_size_limit_bytes,
)
from engine.video.timeline import (
    StreamClock,
    describe_ffmpeg_error,
    display_name,
    first_frame_pts,
    open_video_container,
    select_video_stream,
)
from engine.video.types import VideoError, VideoMetadata, VideoProbe

_RAW_ELEMENTARY_FORMATS = {
    "h264": "H.264",
    "hevc": "HEVC",
    "mpegvideo": "MPEG-1/2 video",
    "m4v": "MPEG-4 video",
    "obu": "AV1",
    "ivf": "IVF",
}
"""Demuxers of bare codec streams: FFmpeg gives their packets no timestamps."""

_DEADLINE_CHECK_EVERY_PACKETS = 256

_RELATIVE_JITTER_FOR_VFR = 0.02
"""Frame intervals differing by more than 2% from the typical one mark a variable frame rate."""


@dataclass
class _PacketScan:
    """What one pass over the packets of the video stream tells us (all in stream ticks)."""

    frame_pts: list[int] = field(default_factory=list)
    keyframe_pts: list[int] = field(default_factory=list)
    first_keyframe: av.Packet | None = None
    """Kept (compressed, small) so the rotation can be read by decoding just this packet."""
    end_pts: int | None = None
    """Largest pts + duration seen: where the last frame stops being displayed."""


def probe_video(
    source: str,
    *,
    max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
    time_limit_s: float = PROBE_TIME_LIMIT_S,
) -> VideoProbe:
    """Read metadata, keyframe times and rotation of the first video stream of `source`.

    Raises VideoError (message meant for a person) when the source cannot be opened, is not
    a video, has no decodable video stream or no frames, has frames over `max_frame_pixels`
    or packets no real frame of its size needs, or takes over `time_limit_s` to read.
    """
    deadline = Deadline(time_limit_s, f"Reading {display_name(source)}")
    with open_video_container(source, max_frame_pixels=max_frame_pixels) as container:
        stream = select_video_stream(container, source)
        width, height = stream.codec_context.width, stream.codec_context.height
        check_frame_size(width, height, max_frame_pixels, display_name(source))
        scan = _scan_packets(container, stream, source, deadline)
        clock = StreamClock(
            time_base=stream.time_base, start_pts=first_frame_pts(stream, min(scan.frame_pts))
        )
        rotation_degrees = _read_rotation_degrees(stream, scan.first_keyframe)
        metadata = _build_metadata(container, stream, scan, clock, rotation_degrees)
        keyframes_ms = tuple(sorted({clock.to_ms(pts) for pts in scan.keyframe_pts}))
        if not keyframes_ms or keyframes_ms[0] != 0:
            # Decoding always starts at the stream start; make that an entry point even when
            # the first packet is not flagged as a keyframe (cut streams, open GOPs).
            keyframes_ms = (0,) + tuple(ms for ms in keyframes_ms if ms > 0)
        return VideoProbe(
            metadata=metadata,
            keyframes_ms=keyframes_ms,
            start_ms=math.floor(clock.start_pts * clock.time_base * 1000),
            rotation_degrees=rotation_degrees,
            stream_index=stream.index,
        )


def _scan_packets(
    container: av.container.InputContainer, stream, source: str, deadline: Deadline
) -> _PacketScan:
    """Demux (never decode) every packet of the stream, collecting presentation times."""
    scan = _PacketScan()
    name = display_name(source)
    size_limit_bytes = packet_size_limit_bytes(
        stream.codec_context.width, stream.codec_context.height
    )
    untimed_packets = 0
    try:
        for count, packet in enumerate(container.demux(stream)):
            if count % _DEADLINE_CHECK_EVERY_PACKETS == 0:
                deadline.check()
            check_packet_size(packet.size, size_limit_bytes, name)
            pts = packet.pts if packet.pts is not None else packet.dts
            untimed_packets += pts is None and packet.size > 0
            if pts is None or packet.size == 0 or packet.is_discard:
                continue  # flush packet, or pre-roll an edit list hides from the timeline
            scan.frame_pts.append(pts)
            if packet.is_keyframe:
                scan.keyframe_pts.append(pts)
                if scan.first_keyframe is None:
                    scan.first_keyframe = packet
            stop = pts + (packet.duration or 0)
            scan.end_pts = stop if scan.end_pts is None else max(scan.end_pts, stop)
    except av.error.FFmpegError as error:
        if not scan.frame_pts:
            raise VideoError(
                f"The video stream of {name} cannot be read: {describe_ffmpeg_error(error)}."
            ) from error
        # A truncated tail: keep what was readable, decoding will stop at the same place.
    if not scan.frame_pts:
        raise VideoError(_no_frames_message(container, name, untimed_packets))
    return scan


def _no_frames_message(container, name: str, untimed_packets: int) -> str:
    """Say why nothing usable was found: a bare codec stream has packets but no timestamps."""
    if untimed_packets:
        kind = _RAW_ELEMENTARY_FORMATS.get(container.format.name)
        what = f"a raw {kind} elementary stream" if kind else "a video stream"
        return (
            f"{name} is {what} without timestamps, which is not supported; "
            "wrap it in an MP4 or MOV container (for example `ffmpeg -framerate 30 -i input "
            "-c copy output.mp4`, with the real frame rate)."
        )
    return f"The video {name} contains no frames."


def _read_rotation_degrees(stream, first_keyframe: av.Packet | None) -> int:
    """Counter-clockwise degrees (0/90/180/270) a player rotates decoded frames by.

    FFmpeg's display matrix convention: `av_display_rotation_get` gives the angle to rotate
    the coded picture counter-clockwise for display (a portrait phone video reads -90 = 270).
    """
    angle = _stream_level_rotation(stream)
    if angle is None:
        angle = _first_frame_rotation(stream, first_keyframe)
    return normalise_rotation(angle)


def normalise_rotation(angle: float) -> int:
    """Map any angle to the nearest of 0, 90, 180, 270 (display matrices hold floats)."""
    return round(angle / 90.0) % 4 * 90


def _stream_level_rotation(stream) -> float | None:
    """The stream's display-matrix rotation where this PyAV exposes it without decoding."""
    for name in ("display_rotation", "rotation"):
        value = getattr(stream, name, None)
        if isinstance(value, (int, float)):
            return float(value)
    return None


def _first_frame_rotation(stream, first_keyframe: av.Packet | None) -> float:
    """Decode one keyframe packet: PyAV 18 reports the display matrix on frames, not streams."""
    if first_keyframe is None:
        return 0.0
    codec_context = stream.codec_context
    try:
        frames = [*codec_context.decode(first_keyframe), *codec_context.decode(None)]
    except av.error.FFmpegError:
        return 0.0  # a rotation we cannot read is no reason to reject the video here
    return float(frames[0].rotation) if frames else 0.0


def _build_metadata(
    container, stream, scan: _PacketScan, clock: StreamClock, rotation: int
) -> VideoMetadata:
    codec_context = stream.codec_context
    duration_ms = _duration_ms(container, stream, scan, clock)
    width, height = codec_context.width, codec_context.height
    if rotation in (90, 270):
        width, height = height, width
    return VideoMetadata(
        codec=codec_context.name,
        duration_ms=duration_ms,
        format=container.format.long_name,
        frame_rate=_frame_rate(stream, scan, duration_ms),
        frame_height=height,
        frame_width=width,
        color_range=_colour_range(codec_context),
    )


def _duration_ms(container, stream, scan: _PacketScan, clock: StreamClock) -> int:
    """From the first frame to the end of the last frame; packet durations may be missing."""
    sorted_pts = sorted(set(scan.frame_pts))
    end_pts = scan.end_pts if scan.end_pts is not None else sorted_pts[-1]
    if end_pts <= sorted_pts[-1] and len(sorted_pts) > 1:
        # The last packet carried no duration: assume it lasts as long as the typical frame.
        end_pts = sorted_pts[-1] + _median_interval(sorted_pts)
    duration = (end_pts - clock.start_pts) * clock.time_base * 1000
    if duration <= 0 and stream.duration:
        duration = stream.duration * stream.time_base * 1000
    if duration <= 0 and container.duration:
        duration = Fraction(container.duration, 1000)  # container duration is in microseconds
    return max(1, round(duration))


def _median_interval(sorted_pts: list[int]) -> int:
    intervals = sorted(b - a for a, b in pairwise(sorted_pts))
    return intervals[len(intervals) // 2]


def _frame_rate(stream, scan: _PacketScan, duration_ms: int) -> float:
    """The average rate for constant-rate streams; frames / duration when the rate varies."""
    frame_count = len(set(scan.frame_pts))
    measured = frame_count * 1000.0 / duration_ms
    if _is_variable_rate(scan.frame_pts) or not stream.average_rate:
        return measured
    return float(stream.average_rate)


def _is_variable_rate(frame_pts: list[int]) -> bool:
    sorted_pts = sorted(set(frame_pts))
    if len(sorted_pts) < 3:
        return False
    typical = _median_interval(sorted_pts)
    if typical <= 0:
        return True
    return any(
        abs((b - a) - typical) > max(1, _RELATIVE_JITTER_FOR_VFR * typical)
        for a, b in pairwise(sorted_pts)
    )


def _colour_range(codec_context) -> str:
    """FULL for JPEG-range streams (flag or a yuvj* pixel format), else LIMITED (the default)."""
    full_range = int(getattr(av.video.reformatter.ColorRange, "JPEG", 2))
    try:
        if int(codec_context.color_range) == full_range:
            return "FULL"
    except (TypeError, ValueError):
        pass
    pixel_format = codec_context.format.name if codec_context.format is not None else ""
    return "FULL" if pixel_format.startswith("yuvj") else "LIMITED"
