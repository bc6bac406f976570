"""Which jobs a caller may see: its own account's, while their results are kept.

GetContentModeration and the report page (engine/report) ask the same question and give the
same answer for a job that is unknown, expired or another account's, so the three cannot be
told apart. Knows nothing about HTTP.
"""

from __future__ import annotations

from engine.errors import ResourceNotFoundException
from engine.jobs.store import JobStore, now_ms
from engine.jobs.types import JobRecord


def visible_job(
    store: JobStore, job_id: str, account: str | None, retention_s: float
) -> JobRecord:
    """The job, if `account` (None: any, for a local operator) may see it and its results have
    not expired; otherwise ResourceNotFoundException."""
    job = store.get_job(job_id)
    if job is None or (account is not None and job.account != account) or _expired(
        job, retention_s
    ):
        raise ResourceNotFoundException(f"No content moderation job with JobId {job_id!r}")
    return job


def _expired(job: JobRecord, retention_s: float) -> bool:
    if job.finished_ms is None:
        return False
    return now_ms() >= job.finished_ms + int(retention_s * 1000)
