"""Limits that keep a hostile or broken file from hanging or exhausting a worker.

A video is untrusted input: its headers can claim any frame size, its packets any length, and
damaged data can make decoding crawl. Three bounds apply to probe and decode alike:
- frame size: at most `max_frame_pixels` per frame (checked on the stream header, and given
  to FFmpeg as `max_pixels` so a size change inside the stream is refused before allocation);
- packet size: a compressed packet larger than a generous multiple of the raw frame is not
  video data, whatever the container says;
- wall time: a deadline checked between packets (one packet decodes in bounded time).
"""

from __future__ import annotations

import time

from engine.video.types import VideoError, VideoMetadata

DEFAULT_MAX_FRAME_PIXELS = 8192 * 4352
"""Largest frame accepted by default (H.264/HEVC level 6.2, 8K): bigger ones exhaust memory."""

PROBE_TIME_LIMIT_S = 300.0
"""Default wall-time budget of a probe: it only demuxes, so even hours of video fit."""

DECODE_BASE_TIME_LIMIT_S = 60.0
DECODE_SECONDS_PER_VIDEO_SECOND = 10.0
"""Default decode budget: 60 s plus 10 s per second of the segment (8K HEVC on one core
decodes about 1 video-second per 3 s; damaged or hostile data may not take 3x longer)."""

_MIN_PACKET_LIMIT_BYTES = 16 * 1024 * 1024
_PACKET_BYTES_PER_PIXEL = 8
"""Raw 4:4:4 16-bit is 6 bytes a pixel; no real compressed frame is larger than that."""


class VideoTooLongError(VideoError):
    """The probed duration is over the configured maximum (settings.max_duration_s)."""


def check_duration(metadata: VideoMetadata, max_duration_s: float) -> None:
    """Refuse a video longer than the maximum: jobs and batch moderation apply the same rule."""
    duration_s = metadata.duration_ms / 1000
    if duration_s > max_duration_s:
        raise VideoTooLongError(
            f"The video is {duration_s:.1f} s long; the maximum duration allowed is {max_duration_s:g} s"
        )


def check_frame_size(width: int, height: int, max_frame_pixels: int, name: str) -> None:
    """Raise VideoError when the declared frame size is missing or above the limit."""
    if width <= 0 or height <= 0:
        raise VideoError(
            f"The video stream of {name} has no frame size; the file is probably damaged."
        )
    if width * height > max_frame_pixels:
        raise VideoError(
            f"The frames of {name} are {width}x{height} pixels; at most "
            f"{max_frame_pixels} pixels per frame (for example {_example_size(max_frame_pixels)}) "
            "are supported."
        )


def _example_size(max_frame_pixels: int) -> str:
    if max_frame_pixels == DEFAULT_MAX_FRAME_PIXELS:
        return "8192x4352"
    width = int((max_frame_pixels * 16 / 9) ** 0.5)
    return f"{width}x{max_frame_pixels // max(width, 1)}"


def packet_size_limit_bytes(width: int, height: int) -> int:
    """Largest compressed packet believed for frames of this size."""
    return max(_MIN_PACKET_LIMIT_BYTES, _PACKET_BYTES_PER_PIXEL * width * height)


def check_packet_size(size: int, limit_bytes: int, name: str) -> None:
    if size > limit_bytes:
        raise VideoError(
            f"{name} contains a video packet of {size} bytes, more than any real frame of its "
            f"size needs ({limit_bytes} bytes); the file is damaged or not a genuine video."
        )


def default_decode_time_limit_s(segment_duration_ms: int) -> float:
    return DECODE_BASE_TIME_LIMIT_S + DECODE_SECONDS_PER_VIDEO_SECOND * segment_duration_ms / 1000


class Deadline:
    """A wall-time budget for one probe or segment decode, checked between packets."""

    def __init__(self, time_limit_s: float, activity: str) -> None:
        if time_limit_s <= 0:
            raise ValueError(f"time_limit_s must be positive, got {time_limit_s}")
        self._time_limit_s = time_limit_s
        self._activity = activity
        self._expires_at = time.monotonic() + time_limit_s

    def check(self) -> None:
        if time.monotonic() > self._expires_at:
            raise VideoError(
                f"{self._activity} took longer than {self._time_limit_s:g} s and was stopped; "
                "the file may be damaged or far more complex than its size suggests."
            )
