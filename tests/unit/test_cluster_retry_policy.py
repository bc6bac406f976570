"""Retry rules of engine/cluster/retry.py without a Ray cluster: which failures run again, how
classify calls move to another actor, and what a person reads when we give up."""

from __future__ import annotations

import pytest
import ray.exceptions

from engine.cluster.failures import (
    ClusterError,
    InferenceUnavailableError,
    SegmentFailedError,
    describe_exception,
    failure_message,
)
from engine.cluster.retry import (
    FailureKind,
    SegmentRetryPolicy,
    classify_with_retries,
    failure_kind,
    root_cause,
)
from engine.video.types import Segment, VideoError
from models.base import NoModelInstalledError

SEGMENT = Segment(index=3, start_ms=6000, stop_ms=8000)


def task_error(cause: BaseException) -> ray.exceptions.RayTaskError:
    """What `ray.get` raises when task code raised `cause` (built without a cluster)."""
    error = ray.exceptions.RayTaskError(
        "moderate_segment",
        "Traceback (most recent call last):\n  ...",
        cause,
        proctitle="ray::moderate_segment",
        pid=1,
        ip="127.0.0.1",
    )
    return error.as_instanceof_cause()


def test_root_cause_peels_nested_task_errors():
    original = ZeroDivisionError("division by zero")
    nested = task_error(task_error(original))
    assert root_cause(nested) is original
    assert root_cause(original) is original


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (task_error(VideoError("The file is not a video.")), FailureKind.DETERMINISTIC),
        (task_error(NoModelInstalledError("no model")), FailureKind.DETERMINISTIC),
        (ray.exceptions.WorkerCrashedError(), FailureKind.WORKER_DIED),
        (ray.exceptions.OutOfMemoryError("killed"), FailureKind.WORKER_DIED),
        (task_error(RuntimeError("boom")), FailureKind.UNEXPECTED),
        (task_error(task_error(KeyError("k"))), FailureKind.UNEXPECTED),
    ],
)
def test_failures_are_sorted_into_three_kinds(error, kind):
    assert failure_kind(error) is kind


def test_only_unexpected_errors_are_retried_and_only_once():
    policy = SegmentRetryPolicy()
    unexpected = task_error(RuntimeError("boom"))
    assert policy.should_retry(unexpected, attempts_so_far=1)
    assert not policy.should_retry(unexpected, attempts_so_far=2)
    # The video's fault is deterministic; a dead worker was already retried by Ray.
    assert not policy.should_retry(task_error(VideoError("bad")), attempts_so_far=1)
    assert not policy.should_retry(ray.exceptions.WorkerCrashedError(), attempts_so_far=1)


def test_giving_up_on_the_videos_fault_returns_the_video_error_itself():
    cause = VideoError("video.mp4 is too damaged to decode: Invalid data")
    assert SegmentRetryPolicy().final_error(SEGMENT, task_error(cause), 1) is cause


def test_giving_up_on_an_unexpected_error_says_where_and_what_in_one_line():
    error = task_error(task_error(ZeroDivisionError("division by zero\nmore detail")))
    final = SegmentRetryPolicy().final_error(SEGMENT, error, 2)
    assert isinstance(final, SegmentFailedError)
    assert str(final) == (
        "Processing failed at segment 3 (6.0-8.0 s) after 2 attempt(s): "
        "ZeroDivisionError: division by zero"
    )
    assert failure_message(final) == str(final)


def test_giving_up_after_worker_deaths_names_the_segment():
    final = SegmentRetryPolicy().final_error(SEGMENT, ray.exceptions.WorkerCrashedError(), 1)
    assert isinstance(final, SegmentFailedError)
    assert "segment 3 (6.0-8.0 s)" in str(final) and "died 4 times" in str(final)
    assert "\n" not in str(final) and "Traceback" not in str(final)


class ActorDouble:
    """Stands for an actor handle: answers, or raises what a dead actor's call raises."""

    def __init__(self, name: str, dead_calls: int = 0, error: BaseException | None = None):
        self.name, self.dead_calls, self.error, self.calls = name, dead_calls, error, 0

    def classify(self):
        self.calls += 1
        if self.error is not None:
            raise self.error
        if self.calls <= self.dead_calls:
            raise ray.exceptions.ActorDiedError()
        return self.name


def test_classify_moves_to_the_next_actor_when_one_died():
    dead, alive = ActorDouble("dead", dead_calls=99), ActorDouble("alive")
    waits: list[float] = []
    result = classify_with_retries(lambda a: a.classify(), [dead, alive], sleep=waits.append)
    assert result == "alive"
    assert (dead.calls, alive.calls) == (1, 1)
    assert waits == [0.25]


def test_classify_waits_for_a_restarting_single_actor():
    actor = ActorDouble("restarted", dead_calls=2)
    waits: list[float] = []
    assert classify_with_retries(lambda a: a.classify(), [actor], sleep=waits.append) == "restarted"
    assert actor.calls == 3 and waits == [0.25, 0.5]


def test_classify_gives_up_with_a_plain_error_after_its_attempts():
    actors = [ActorDouble("a", dead_calls=99), ActorDouble("b", dead_calls=99)]
    waits: list[float] = []
    with pytest.raises(InferenceUnavailableError, match="after 5 attempts"):
        classify_with_retries(lambda a: a.classify(), actors, sleep=waits.append)
    assert [a.calls for a in actors] == [3, 2]
    assert waits == [0.25, 0.5, 1.0, 2.0]


def test_classify_does_not_retry_the_actors_own_exceptions():
    actor = ActorDouble("bad", error=task_error(ValueError("frames must be uint8")))
    with pytest.raises(ValueError):
        classify_with_retries(lambda a: a.classify(), [actor], sleep=lambda s: None)
    assert actor.calls == 1


def test_describe_exception_is_short_and_hides_presigned_url_signatures():
    error = OSError(
        "cannot open https://minio:9000/videos/a.mp4?X-Amz-Signature=abc123&X-Amz-Credential=k\n"
        "second line"
    )
    text = describe_exception(error)
    assert text == "OSError: cannot open https://minio:9000/videos/a.mp4?..."
    assert len(describe_exception(RuntimeError("x" * 1000))) <= len("RuntimeError: ") + 200
    assert describe_exception(KeyError()) == "KeyError"


def test_failure_messages_for_people():
    assert failure_message(ClusterError("The worker reading the video died")) == (
        "The worker reading the video died"
    )
    message = failure_message(RuntimeError("unexpected state\nTraceback ..."))
    assert message == "Internal error while processing the video (RuntimeError: unexpected state)"
