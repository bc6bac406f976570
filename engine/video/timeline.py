"""Shared plumbing of probe and decode: opening a source safely and converting stream ticks to ms.

Millisecond convention (one rule used everywhere in engine/video):
    ms(pts) = ceil((pts - first_frame_pts) * time_base * 1000)
Because sample times are integers, `ms(pts) <= t` holds exactly when the frame's true time
is <= t, so comparing integer ms never picks a different frame than exact arithmetic would,
and a segment starting at a keyframe's ms never owns a sample time before that keyframe.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction

import av

from engine.video.limits import DEFAULT_MAX_FRAME_PIXELS
from engine.video.types import VideoError

_PROTOCOL_WHITELIST = "file,http,https,tcp,tls"
"""A media file must not make FFmpeg open other resources (playlists, concat: lists, pipes)."""

_NETWORK_TIMEOUT_S = (30.0, 60.0)
"""(open, read) timeouts for URLs, so a stalled object store fails the segment, not hangs it."""


@dataclass(frozen=True)
class StreamClock:
    """Converts between a stream's pts ticks and ms relative to its first displayed frame."""

    time_base: Fraction
    start_pts: int

    def to_ms(self, pts: int) -> int:
        return math.ceil((pts - self.start_pts) * self.time_base * 1000)

    def latest_pts_at_or_before(self, ms: int) -> int:
        """The largest pts whose `to_ms` is <= `ms` (where to seek to find the frame at `ms`)."""
        return self.start_pts + math.floor(Fraction(ms, 1000) / self.time_base)


def first_frame_pts(stream, smallest_packet_pts: int) -> int:
    """The pts that maps to 0 ms. Probe and decode must agree on it without sharing state.

    FFmpeg's stream start time is the first presentation time after edit lists; decode can read
    it without scanning, so it wins whenever the container provides it.
    """
    return stream.start_time if stream.start_time is not None else smallest_packet_pts


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def open_video_container(
    source: str, hwaccel=None, max_frame_pixels: int = DEFAULT_MAX_FRAME_PIXELS
) -> av.container.InputContainer:
    """Open `source` for reading, turning FFmpeg's errors into VideoError a person understands.

    `hwaccel` (a PyAV HWAccel or None) attaches hardware decoding to the video decoders.
    `max_frame_pixels` also bounds the frames FFmpeg decodes while opening (it decodes a few
    to learn the stream parameters): a header claiming 12288x12288 would allocate 450 MB.
    """
    name = display_name(source)
    if not is_url(source):
        if not os.path.exists(source):
            raise VideoError(f"The video file {name} does not exist.")
        if os.path.getsize(source) == 0:
            raise VideoError(f"The video file {name} is empty (0 bytes).")
    try:
        return av.open(
            source,
            mode="r",
            container_options={"protocol_whitelist": _PROTOCOL_WHITELIST},
            options={"max_pixels": str(max_frame_pixels)},  # to the decoders it opens
            timeout=_NETWORK_TIMEOUT_S if is_url(source) else None,
            hwaccel=hwaccel,
        )
    except av.error.InvalidDataError as error:
        raise VideoError(
            f"{name} is not a video file FFmpeg can read, or it is damaged."
        ) from error
    except av.error.EOFError as error:
        raise VideoError(
            f"{name} ends before any video data; the file is empty or truncated."
        ) from error
    except av.error.FFmpegError as error:
        raise VideoError(
            f"The video {name} cannot be opened: {describe_ffmpeg_error(error)}."
        ) from error
    except OSError as error:
        raise VideoError(
            f"The video {name} cannot be opened: {error.strerror or 'I/O error'}."
        ) from error
    except RuntimeError as error:  # PyAV: hardware decoding demanded, no stream supports it
        raise VideoError(
            f"Hardware decoding (NVDEC) cannot decode the video stream of {name}."
        ) from error


def describe_ffmpeg_error(error: Exception) -> str:
    """FFmpeg's own words for an error, without the file name or URL PyAV appends to str()."""
    text = getattr(error, "strerror", None)
    if isinstance(text, str) and text:
        return text[:1].lower() + text[1:]
    return "an unknown FFmpeg error"


def select_video_stream(container: av.container.InputContainer, source: str):
    """The first real video stream (cover-art pictures are skipped), checked to be decodable."""
    name = display_name(source)
    candidates = [s for s in container.streams.video if not _is_attached_picture(s)]
    if not candidates:
        kinds = sorted({s.type for s in container.streams})
        contents = f"it contains: {', '.join(kinds)}" if kinds else "it contains no streams at all"
        raise VideoError(f"{name} has no video stream ({contents}).")
    stream = candidates[0]
    codec_context = stream.codec_context
    if codec_context is None or not codec_context.name or codec_context.name == "none":
        raise VideoError(
            f"The video codec of {name} is not supported (this FFmpeg build cannot decode it)."
        )
    try:
        av.codec.Codec(codec_context.name, "r")
    except (
        Exception
    ) as error:  # PyAV raises its own UnknownCodecError type, which varies by version
        raise VideoError(
            f"The video codec {codec_context.name} of {name} is not supported."
        ) from error
    return stream


def _is_attached_picture(stream) -> bool:
    try:
        return bool(stream.disposition & av.stream.Disposition.attached_pic)
    except (AttributeError, TypeError):
        return False


def display_name(source: str) -> str:
    """The object or file name, without a presigned URL's query string (it holds a signature)."""
    return source.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "the video"
