"""Errors the cluster raises when a video cannot be moderated for a reason that is not the
video's fault, worded for the person who started the job (they become its StatusMessage as
they are), the one-line description of an arbitrary exception they quote, and
`failure_message`: the StatusMessage of any failure (a job's, a batch video's).

Kept free of Ray imports so the jobs layer can recognise them without loading Ray.
"""

from __future__ import annotations

import logging
import re

from engine.errors import ServiceError
from engine.video.types import VideoError
from models.base import NoModelInstalledError

log = logging.getLogger(__name__)

MAX_DETAIL_CHARS = 200
_URL_QUERY = re.compile(r"(https?://[^\s?]+)\?\S*")


class ClusterError(RuntimeError):
    """Base of the cluster's own failures; the message is meant to be shown to people."""


class SegmentFailedError(ClusterError):
    """A segment failed on every attempt (its worker kept dying, or its code kept raising)."""


class InferenceUnavailableError(ClusterError):
    """No inference actor answered a classify call, even after waiting for restarts."""


class RunnerStoppedError(ClusterError):
    """The runner is shutting down (the server is stopping); the job resumes at the next start."""


def describe_exception(error: BaseException) -> str:
    """`TypeName: first line of the message`, short: no traceback, no Ray wrapper text, and no
    presigned-URL query strings (they carry signatures)."""
    lines = str(error).strip().splitlines()
    first_line = _URL_QUERY.sub(r"\1?...", lines[0].strip()) if lines else ""
    if len(first_line) > MAX_DETAIL_CHARS:
        first_line = first_line[: MAX_DETAIL_CHARS - 3] + "..."
    name = type(error).__name__
    return f"{name}: {first_line}" if first_line else name


def describe_segment(index: int, start_ms: int, stop_ms: int) -> str:
    """How a person reads a segment: its number and its time range in seconds."""
    return f"segment {index} ({start_ms / 1000:.1f}-{stop_ms / 1000:.1f} s)"


def failure_message(error: BaseException) -> str:
    """StatusMessage for a failed video: the video's own explanation, a contract error's
    message, the cluster's plain account of what failed, or a one-line internal error
    (exception type and first line, no traceback, no presigned-URL signature)."""
    if isinstance(error, VideoError):
        return str(error) or "The video could not be processed"
    if isinstance(error, ServiceError):
        return error.message
    if isinstance(error, ClusterError):
        return str(error)
    if isinstance(error, NoModelInstalledError):  # missing weights, or bf16 on an AVX2 CPU
        return f"The moderation model is not available: {error}"
    log.error("internal error while moderating a video", exc_info=error)
    return f"Internal error while processing the video ({describe_exception(error)})"


def failure_metric_type(error: BaseException) -> str:
    """A short, bounded name for what failed (the metrics' error type): a contract error's
    code, else video / cluster / model / internal, as failure_message tells them apart."""
    if isinstance(error, VideoError):
        return "video"
    if isinstance(error, ServiceError):
        return error.code
    if isinstance(error, ClusterError):
        return "cluster"
    if isinstance(error, NoModelInstalledError):
        return "model"
    return "internal"
