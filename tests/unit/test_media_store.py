"""The media analysis jobs' store on a real SQLite file: idempotent starts per account and
ClientRequestToken, the per-account limit, forward-only statuses, counted runs, and reads that
never cross accounts."""

from __future__ import annotations

import pytest

from engine.errors import IdempotentParameterMismatchException, LimitExceededException
from engine.jobs.media_store import MediaAnalysisStore
from engine.jobs.media_types import (
    FailureCode,
    MediaAnalysisRequest,
    MediaJobStatus,
    MediaOutputs,
)
from engine.storage.base import ObjectRef

MANIFEST = ObjectRef("data", "photos.manifest", "v1")


def request(**changes) -> MediaAnalysisRequest:
    fields = {"manifest": MANIFEST, "output_bucket": "out", "min_confidence": 60.0,
              "client_request_token": "token-1"} | changes
    return MediaAnalysisRequest(**fields)


@pytest.fixture()
def store(tmp_path):
    store = MediaAnalysisStore(tmp_path / "jobs.sqlite3")
    yield store
    store.close()


def test_the_same_token_and_parameters_give_the_same_job_and_others_are_refused(store):
    assert store.create_job("job-1", "acct-a", request(), 1, max_active=5) == ("job-1", True)
    assert store.create_job("job-2", "acct-a", request(), 2, max_active=5) == ("job-1", False)
    with pytest.raises(IdempotentParameterMismatchException, match="token-1"):
        store.create_job("job-3", "acct-a", request(min_confidence=70.0), 3, max_active=5)
    # Tokens are per account.
    assert store.create_job("job-4", "acct-b", request(), 4, max_active=5) == ("job-4", True)
    assert store.get_job("acct-b", "job-1") is None
    assert store.get_job("acct-a", "job-1").request == request()


def test_an_account_may_have_only_so_many_unfinished_jobs(store):
    for number in range(2):
        store.create_job(f"job-{number}", "acct", request(client_request_token=None), number,
                         max_active=2)
    with pytest.raises(LimitExceededException, match="at most 2"):
        store.create_job("job-9", "acct", request(client_request_token=None), 9, max_active=2)
    store.begin_run("job-0")
    store.finish_job("job-0", MediaJobStatus.SUCCEEDED, 10, None)
    store.create_job("job-9", "acct", request(client_request_token=None), 9, max_active=2)
    assert [job.job_id for job in store.list_jobs("acct")] == ["job-9", "job-1", "job-0"]


def test_runs_are_counted_and_a_finished_job_never_moves_again(store):
    store.create_job("job", "acct", request(), 1, max_active=5)
    assert [job.job_id for job in store.unfinished_jobs()] == ["job"]
    assert store.begin_run("job") == 1 and store.begin_run("job") == 2
    assert store.job_by_id("job").status is MediaJobStatus.IN_PROGRESS
    outputs = MediaOutputs(None, ObjectRef("out", "job/manifest-summary.json"), "7.0")
    assert store.finish_job("job", MediaJobStatus.FAILED, 5, outputs,
                            (FailureCode.INVALID_OUTPUT_CONFIG, "cannot write"))
    assert not store.finish_job("job", MediaJobStatus.SUCCEEDED, 6, None)
    assert store.begin_run("job") == 0
    job = store.get_job("acct", "job")
    assert job.status is MediaJobStatus.FAILED and job.completed_ms == 5
    assert job.failure_code is FailureCode.INVALID_OUTPUT_CONFIG
    assert job.failure_message == "cannot write" and job.outputs == outputs
    assert store.unfinished_jobs() == []
