"""The SQLite job store: idempotency (race-free), limits, transitions, segments, retention."""

from __future__ import annotations

import threading

import pytest

from engine.errors import IdempotentParameterMismatchException, LimitExceededException
from engine.jobs.store import JobStore
from engine.jobs.types import IllegalTransitionError, JobState, StartRequest
from engine.results.types import Detection
from engine.storage.base import ObjectRef
from engine.video.types import Segment


def request(token=None, name="clip.mp4", min_confidence=50.0, tag=None):
    return StartRequest(
        ObjectRef("videos", name), min_confidence, client_request_token=token, job_tag=tag
    )


@pytest.fixture()
def store(tmp_path):
    return JobStore(tmp_path / "jobs.sqlite3")


def test_same_token_same_parameters_returns_the_first_job(store):
    first = store.create_job("a" * 64, "acct", request("tok"), "7.0", 20)
    again = store.create_job("b" * 64, "acct", request("tok"), "7.0", 20)
    assert first == ("a" * 64, True) and again == ("a" * 64, False)
    assert store.get_job("b" * 64) is None


def test_same_token_other_parameters_is_a_mismatch(store):
    store.create_job("a" * 64, "acct", request("tok"), "7.0", 20)
    for changed in (
        request("tok", name="other.mp4"),
        request("tok", min_confidence=60),
        request("tok", tag="t"),
    ):
        with pytest.raises(IdempotentParameterMismatchException):
            store.create_job("b" * 64, "acct", changed, "7.0", 20)


def test_tokens_are_per_account(store):
    store.create_job("a" * 64, "acct-1", request("tok"), "7.0", 20)
    assert store.create_job("b" * 64, "acct-2", request("tok", name="x"), "7.0", 20) == (
        "b" * 64,
        True,
    )


def test_concurrent_duplicate_starts_create_exactly_one_job(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    JobStore(path)
    results, barrier = [], threading.Barrier(8)

    def start(number):
        own_store = JobStore(path)  # separate connections, as separate processes would have
        barrier.wait()
        results.append(own_store.create_job(f"{number:064d}", "acct", request("same"), "7.0", 20))

    threads = [threading.Thread(target=start, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({job_id for job_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1


def test_limit_counts_only_active_jobs(store):
    store.create_job("1" * 64, "acct", request(), "7.0", 2)
    store.create_job("2" * 64, "acct", request(), "7.0", 2)
    with pytest.raises(LimitExceededException, match="at most 2"):
        store.create_job("3" * 64, "acct", request(), "7.0", 2)
    store.fail_job("1" * 64, "broken", retention_s=60)
    assert store.create_job("3" * 64, "acct", request(), "7.0", 2)[1]


def test_limit_is_per_account(store):
    store.create_job("1" * 64, "acct-a", request(), "7.0", 1)
    with pytest.raises(LimitExceededException, match="at most 1"):
        store.create_job("2" * 64, "acct-a", request(), "7.0", 1)
    assert store.create_job("3" * 64, "acct-b", request(), "7.0", 1)[1]


def test_a_replayed_token_is_answered_even_at_the_limit(store):
    store.create_job("1" * 64, "acct", request("tok"), "7.0", 1)
    assert store.create_job("2" * 64, "acct", request("tok"), "7.0", 1) == ("1" * 64, False)


def test_only_allowed_transitions_happen(store):
    store.create_job("1" * 64, "acct", request(), "7.0", 20)
    with pytest.raises(IllegalTransitionError):
        store.complete_job(
            "1" * 64, {}, {}, retention_s=60
        )  # SUBMITTED -> SUCCEEDED is not an edge
    assert store.mark_running("1" * 64).state is JobState.RUNNING
    assert store.mark_running("1" * 64).state is JobState.RUNNING  # resuming keeps RUNNING
    done = store.complete_job("1" * 64, {}, {}, retention_s=60)
    assert done.state is JobState.SUCCEEDED and done.finished_ms is not None
    with pytest.raises(IllegalTransitionError):
        store.fail_job("1" * 64, "late failure", retention_s=60)


def test_a_segment_is_stored_once(store):
    store.create_job("1" * 64, "acct", request(), "7.0", 20)
    plan = [Segment(0, 0, 1000), Segment(1, 1000, 2000)]
    assert store.save_plan("1" * 64, plan) == plan
    assert store.save_plan("1" * 64, [Segment(0, 0, 2000)]) == plan  # the stored plan wins
    detection = Detection(0, "Weapons", "Violence", 2, 90.0, 25)
    assert store.save_segment_result("1" * 64, 0, [0], [detection])
    assert not store.save_segment_result("1" * 64, 0, [0], [detection])
    detections, samples = store.segment_outputs("1" * 64)
    assert detections == [detection] and samples == [0]
    assert store.pending_segments("1" * 64) == [Segment(1, 1000, 2000)]


def test_finished_jobs_are_purged_after_retention(store):
    store.create_job("1" * 64, "acct", request(), "7.0", 20)
    store.create_job("2" * 64, "acct", request(), "7.0", 20)
    failed = store.fail_job("1" * 64, "broken", retention_s=10)
    assert store.purge_expired(at_ms=failed.finished_ms + 9_000) == 0
    assert store.purge_expired(at_ms=failed.finished_ms + 10_000) == 1
    assert store.get_job("1" * 64) is None and store.get_job("2" * 64) is not None
