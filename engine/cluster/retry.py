"""When a segment or a classify call is tried again, and the error a person sees when we give up.

Three kinds of segment failure, told apart by what `ray.get` raised in the driver:
- the video's fault (VideoError) or no model installed: deterministic, so never retried;
- the worker process died (SIGKILL, OOM, node lost): Ray itself re-runs the task on a new
  worker, `SEGMENT_SYSTEM_RETRIES` times, before reporting the death;
- anything else raised by task code (a bug, a dead inference pool): run once more, in case it
  was transient, then given up with a short message naming the segment and the error.

Inside a task, a classify call whose actor died or is restarting is retried on the next actor
of the pool after a short wait. Nothing here knows about jobs or storage.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import ray

from engine.cluster.failures import (
    InferenceUnavailableError,
    SegmentFailedError,
    describe_exception,
    describe_segment,
)
from engine.video.types import Segment, VideoError
from models.adapter import AdapterError
from models.base import NoModelInstalledError

log = logging.getLogger(__name__)

SEGMENT_SYSTEM_RETRIES = 3
"""Ray `max_retries` of a segment task: re-runs after its worker process died."""
SEGMENT_APPLICATION_ATTEMPTS = 2
"""Runs of a segment whose code raised an unexpected exception (the first plus one retry)."""
CLASSIFY_ATTEMPTS = 5
CLASSIFY_BACKOFF_S = (0.25, 0.5, 1.0, 2.0)
"""Waits between classify attempts: about 4 s in all, enough for an actor to restart here."""

DETERMINISTIC_ERRORS = (VideoError, NoModelInstalledError, AdapterError)
_ROOT_DEPTH_LIMIT = 16

Result = TypeVar("Result")


class FailureKind(enum.Enum):
    DETERMINISTIC = "deterministic"
    WORKER_DIED = "worker died"
    UNEXPECTED = "unexpected"


def root_cause(error: BaseException) -> BaseException:
    """The exception task code raised, under Ray's RayTaskError wrappers (nested when a task
    re-raised a remote call's error)."""
    for _ in range(_ROOT_DEPTH_LIMIT):
        cause = getattr(error, "cause", None)
        if not isinstance(error, ray.exceptions.RayTaskError) or cause is None or cause is error:
            return error
        error = cause
    return error


def failure_kind(error: BaseException) -> FailureKind:
    """What `ray.get` of a segment task raised, sorted into the three kinds above."""
    cause = root_cause(error)
    if isinstance(cause, DETERMINISTIC_ERRORS):
        return FailureKind.DETERMINISTIC
    if isinstance(error, ray.exceptions.RayTaskError):
        return FailureKind.UNEXPECTED
    return FailureKind.WORKER_DIED


class SegmentRetryPolicy:
    """Decides, in the driver, whether a failed segment runs again, and what to raise if not."""

    def __init__(self, unexpected_attempts: int = SEGMENT_APPLICATION_ATTEMPTS) -> None:
        self.unexpected_attempts = unexpected_attempts

    def should_retry(self, error: BaseException, attempts_so_far: int) -> bool:
        kind = failure_kind(error)
        return kind is FailureKind.UNEXPECTED and attempts_so_far < self.unexpected_attempts

    def final_error(self, segment: Segment, error: BaseException, attempts: int) -> Exception:
        """The error that fails the job: the video's own error, or a short plain sentence."""
        cause = root_cause(error)
        where = describe_segment(segment.index, segment.start_ms, segment.stop_ms)
        kind = failure_kind(error)
        if kind is FailureKind.DETERMINISTIC:
            return cause if isinstance(cause, Exception) else RuntimeError(str(cause))
        if kind is FailureKind.WORKER_DIED:
            runs = SEGMENT_SYSTEM_RETRIES + 1
            return SegmentFailedError(
                f"Processing stopped at {where}: the worker process running it died "
                f"{runs} time{'s' if runs != 1 else ''} ({type(error).__name__})"
            )
        return SegmentFailedError(
            f"Processing failed at {where} after {attempts} attempt(s): {describe_exception(cause)}"
        )


def classify_with_retries(
    call: Callable[[object], Result],
    actors: Sequence[object],
    attempts: int = CLASSIFY_ATTEMPTS,
    backoff_s: Sequence[float] = CLASSIFY_BACKOFF_S,
    sleep: Callable[[float], None] = time.sleep,
) -> Result:
    """`call(actor)`, trying the next actor of `actors` (round robin) when the one asked died or
    is restarting. Other errors (the actor's own exceptions) propagate at once."""
    if not actors:
        raise ValueError("classify_with_retries needs at least one actor")
    last_error: BaseException | None = None
    for attempt in range(attempts):
        actor = actors[attempt % len(actors)]
        try:
            return call(actor)
        except ray.exceptions.RayActorError as error:  # died, restarting or unreachable
            last_error = error
            log.warning(
                "classify attempt %d of %d failed: %s",
                attempt + 1,
                attempts,
                describe_exception(error),
            )
            if attempt + 1 < attempts:
                sleep(backoff_s[min(attempt, len(backoff_s) - 1)])
    raise InferenceUnavailableError(
        f"no inference actor answered after {attempts} attempts ({type(last_error).__name__})"
    )
