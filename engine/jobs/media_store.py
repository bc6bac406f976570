"""Durable state of media analysis jobs: one table in the jobs' SQLite file.

Starting is idempotent per account and ClientRequestToken in one transaction (the same token
with other parameters: IdempotentParameterMismatchException); statuses move only forward
(QUEUED -> IN_PROGRESS -> SUCCEEDED | FAILED), and every read names the account, so another
account's job is simply not found. Knows nothing about HTTP, Ray or the wire.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine.errors import IdempotentParameterMismatchException, LimitExceededException
from engine.jobs.media_types import (
    FailureCode,
    MediaAnalysisRecord,
    MediaAnalysisRequest,
    MediaJobStatus,
    MediaOutputs,
)
from engine.jobs.sqlite import SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS media_analysis_jobs (
    job_id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    client_token TEXT,
    fingerprint TEXT NOT NULL,
    request_json TEXT NOT NULL,
    status TEXT NOT NULL,
    failure_code TEXT,
    failure_message TEXT,
    outputs_json TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    completed_ms INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS media_jobs_by_token
    ON media_analysis_jobs(account, client_token) WHERE client_token IS NOT NULL;
CREATE INDEX IF NOT EXISTS media_jobs_by_account ON media_analysis_jobs(account, created_ms);
CREATE INDEX IF NOT EXISTS media_jobs_by_status ON media_analysis_jobs(status);
"""
_ACTIVE = (MediaJobStatus.QUEUED.value, MediaJobStatus.IN_PROGRESS.value)


class MediaAnalysisStore(SqliteDatabase):
    """All reads and writes of media analysis jobs; one SQLite connection per thread."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._connection().executescript(_SCHEMA)

    def create_job(self, job_id: str, account: str, request: MediaAnalysisRequest,
                   created_ms: int, max_active: int) -> tuple[str, bool]:
        """Record a QUEUED job, or return the one an identical earlier start created:
        (job_id, created)."""
        fingerprint = request.fingerprint()
        with self._transaction() as connection:
            token = request.client_request_token
            if token is not None:
                existing = connection.execute(
                    "SELECT job_id, fingerprint FROM media_analysis_jobs"
                    " WHERE account = ? AND client_token = ?", (account, token)).fetchone()
                if existing is not None:
                    if existing["fingerprint"] != fingerprint:
                        raise IdempotentParameterMismatchException(
                            f"ClientRequestToken {token!r} was already used with different "
                            "parameters")
                    return existing["job_id"], False
            active = connection.execute(
                "SELECT COUNT(*) FROM media_analysis_jobs WHERE account = ? AND status IN (?, ?)",
                (account, *_ACTIVE)).fetchone()[0]
            if active >= max_active:
                raise LimitExceededException(
                    f"{active} media analysis jobs of this account are in progress; at most "
                    f"{max_active} may run at once")
            connection.execute(
                "INSERT INTO media_analysis_jobs (job_id, account, client_token, fingerprint,"
                " request_json, status, created_ms) VALUES (?,?,?,?,?,?,?)",
                (job_id, account, token, fingerprint, request.to_json(),
                 MediaJobStatus.QUEUED.value, created_ms))
        return job_id, True

    def get_job(self, account: str, job_id: str) -> MediaAnalysisRecord | None:
        row = self._connection().execute(
            "SELECT * FROM media_analysis_jobs WHERE job_id = ? AND account = ?",
            (job_id, account)).fetchone()
        return None if row is None else _record(row)

    def job_by_id(self, job_id: str) -> MediaAnalysisRecord | None:
        """For the job runner only (it acts for the account that started the job)."""
        row = self._connection().execute(
            "SELECT * FROM media_analysis_jobs WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None else _record(row)

    def list_jobs(self, account: str) -> list[MediaAnalysisRecord]:
        """The account's jobs, newest first (as ListMediaAnalysisJobs sorts them)."""
        rows = self._connection().execute(
            "SELECT * FROM media_analysis_jobs WHERE account = ?"
            " ORDER BY created_ms DESC, job_id", (account,)).fetchall()
        return [_record(row) for row in rows]

    def unfinished_jobs(self) -> list[MediaAnalysisRecord]:
        rows = self._connection().execute(
            "SELECT * FROM media_analysis_jobs WHERE status IN (?, ?) ORDER BY created_ms",
            _ACTIVE).fetchall()
        return [_record(row) for row in rows]

    def begin_run(self, job_id: str) -> int:
        """QUEUED | IN_PROGRESS -> IN_PROGRESS, counting the run; returns the runs started (0 if
        the job is gone or finished)."""
        with self._transaction() as connection:
            updated = connection.execute(
                "UPDATE media_analysis_jobs SET status = ?, attempts = attempts + 1"
                " WHERE job_id = ? AND status IN (?, ?)",
                (MediaJobStatus.IN_PROGRESS.value, job_id, *_ACTIVE)).rowcount
            if not updated:
                return 0
            return connection.execute(
                "SELECT attempts FROM media_analysis_jobs WHERE job_id = ?", (job_id,)
            ).fetchone()[0]

    def finish_job(self, job_id: str, status: MediaJobStatus, completed_ms: int,
                   outputs: MediaOutputs | None, failure: tuple[FailureCode, str] | None = None
                   ) -> bool:
        """An unfinished job -> SUCCEEDED or FAILED (with its failure); False if already done."""
        code, message = failure if failure else (None, None)
        with self._transaction() as connection:
            return connection.execute(
                "UPDATE media_analysis_jobs SET status = ?, completed_ms = ?, outputs_json = ?,"
                " failure_code = ?, failure_message = ? WHERE job_id = ? AND status IN (?, ?)",
                (status.value, completed_ms, outputs.to_json() if outputs else None,
                 code.value if code else None, message, job_id, *_ACTIVE)).rowcount > 0


def _record(row: sqlite3.Row) -> MediaAnalysisRecord:
    return MediaAnalysisRecord(
        job_id=row["job_id"], account=row["account"],
        request=MediaAnalysisRequest.from_json(row["request_json"]),
        status=MediaJobStatus(row["status"]), created_ms=row["created_ms"],
        completed_ms=row["completed_ms"],
        failure_code=FailureCode(row["failure_code"]) if row["failure_code"] else None,
        failure_message=row["failure_message"],
        outputs=MediaOutputs.from_json(row["outputs_json"]) if row["outputs_json"] else None,
        attempts=row["attempts"])
