"""Durable job state in SQLite (WAL) under the data directory.

Tables: `jobs` (one row per accepted job, unique per account + ClientRequestToken),
`segments` (the plan and which segments are done, with their sample times),
`segment_detections` (thresholded detections of each finished segment, written in the same
transaction that marks the segment done, so a restart re-runs only missing segments and never
duplicates a detection), `results` (final rows for both aggregations with a position column per
sort order, so any page is one indexed range scan) and `notification_attempts`.

Every write that must be atomic runs in one `BEGIN IMMEDIATE` transaction, which also makes
idempotent starts race-free across threads and processes. Knows nothing about HTTP or Ray.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from engine.errors import IdempotentParameterMismatchException, LimitExceededException
from engine.jobs.sqlite import SqliteDatabase
from engine.jobs.types import (
    ACTIVE_STATES,
    JobRecord,
    JobState,
    NotificationChannel,
    StartRequest,
    check_transition,
)
from engine.results.types import ContentType, Detection
from engine.storage.base import ObjectRef
from engine.video.types import Segment, VideoMetadata

AGGREGATION_CODES = {"TIMESTAMPS": "T", "SEGMENTS": "S"}
SORT_COLUMNS = {"TIMESTAMP": "pos_time", "NAME": "pos_name"}

# The columns of one detection, in segment rows and result rows alike (see _label_columns).
_DETECTION_COLUMNS = """\
    timestamp_ms INTEGER NOT NULL,
    label_index INTEGER NOT NULL,
    name TEXT NOT NULL,
    parent_name TEXT NOT NULL,
    level INTEGER NOT NULL,
    confidence REAL NOT NULL,
"""
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    client_token TEXT,
    fingerprint TEXT NOT NULL,
    bucket TEXT NOT NULL,
    object_key TEXT NOT NULL,
    object_version TEXT,
    min_confidence REAL NOT NULL,
    sns_topic_arn TEXT,
    role_arn TEXT,
    job_tag TEXT,
    state TEXT NOT NULL,
    status_message TEXT,
    metadata_json TEXT,
    model_version TEXT NOT NULL,
    decode_mode TEXT NOT NULL DEFAULT 'accurate',
    adapter_arn TEXT,
    created_ms INTEGER NOT NULL,
    finished_ms INTEGER,
    expires_ms INTEGER,
    notify_pending INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_by_token ON jobs(account, client_token)
    WHERE client_token IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state);
CREATE INDEX IF NOT EXISTS jobs_by_expiry ON jobs(expires_ms) WHERE expires_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS segments (
    job_id TEXT NOT NULL,
    seg_index INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    stop_ms INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    samples_json TEXT,
    PRIMARY KEY (job_id, seg_index)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS segment_detections (
    job_id TEXT NOT NULL,
    seg_index INTEGER NOT NULL,
{_DETECTION_COLUMNS}    content_types TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS segment_detections_by_job ON segment_detections(job_id, seg_index);
CREATE TABLE IF NOT EXISTS results (
    job_id TEXT NOT NULL,
    aggregation TEXT NOT NULL,
    pos_time INTEGER NOT NULL,
    pos_name INTEGER NOT NULL,
{_DETECTION_COLUMNS}    start_ms INTEGER,
    end_ms INTEGER,
    content_types TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (job_id, aggregation, pos_time)
);
CREATE UNIQUE INDEX IF NOT EXISTS results_by_name ON results(job_id, aggregation, pos_name);
CREATE TABLE IF NOT EXISTS notification_attempts (
    attempt_id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    target TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    succeeded INTEGER NOT NULL,
    detail TEXT,
    at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS notification_attempts_by_job ON notification_attempts(job_id);
"""

_RESULT_COLUMNS = (
    "timestamp_ms, label_index, name, parent_name, level, confidence, start_ms, end_ms,"
    " content_types"
)


def now_ms() -> int:
    return int(time.time() * 1000)


class JobStore(SqliteDatabase):
    """All reads and writes of job state; one SQLite connection per thread."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._connection().executescript(_SCHEMA)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Bring a store written by an earlier version up to this schema (columns only grow)."""
        connection = self._connection()
        columns = {row["name"] for row in connection.execute("PRAGMA table_info(jobs)")}
        if "decode_mode" not in columns:
            connection.execute(
                "ALTER TABLE jobs ADD COLUMN decode_mode TEXT NOT NULL DEFAULT 'accurate'"
            )
        if "adapter_arn" not in columns:
            connection.execute("ALTER TABLE jobs ADD COLUMN adapter_arn TEXT")
        for table in ("segment_detections", "results"):
            columns = {row["name"] for row in connection.execute(f"PRAGMA table_info({table})")}
            if "content_types" not in columns:
                connection.execute(
                    f"ALTER TABLE {table} ADD COLUMN content_types TEXT NOT NULL DEFAULT ''"
                )

    # -- jobs ------------------------------------------------------------------------------

    def create_job(
        self,
        job_id: str,
        account: str,
        request: StartRequest,
        model_version: str,
        max_active_jobs: int,
        decode_mode: str = "accurate",
    ) -> tuple[str, bool]:
        """Record a new SUBMITTED job, or return the job an earlier identical start created.

        Returns (job_id, created). Raises IdempotentParameterMismatchException when the token
        was used with other parameters, LimitExceededException when the account has too many jobs active.
        """
        fingerprint = request.fingerprint()
        with self._transaction() as connection:
            if request.client_request_token is not None:
                existing = connection.execute(
                    "SELECT job_id, fingerprint FROM jobs WHERE account = ? AND client_token = ?",
                    (account, request.client_request_token),
                ).fetchone()
                if existing is not None:
                    if existing["fingerprint"] != fingerprint:
                        raise IdempotentParameterMismatchException(
                            f"ClientRequestToken {request.client_request_token!r} was already used "
                            "with different parameters"
                        )
                    return existing["job_id"], False
            # Per account, as the real service counts its concurrent-job quota.
            active = connection.execute(
                "SELECT COUNT(*) FROM jobs WHERE account = ? AND state IN"
                f" ({_sql_parameter_marks(ACTIVE_STATES)})",
                [account, *(state.value for state in ACTIVE_STATES)],
            ).fetchone()[0]
            if active >= max_active_jobs:
                raise LimitExceededException(
                    f"{active} jobs of this account are in progress; at most {max_active_jobs}"
                    " may run at once"
                )
            channel = request.notification_channel
            connection.execute(
                "INSERT INTO jobs (job_id, account, client_token, fingerprint, bucket, object_key,"
                " object_version, min_confidence, sns_topic_arn, role_arn, job_tag, state,"
                " model_version, decode_mode, adapter_arn, created_ms)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    job_id,
                    account,
                    request.client_request_token,
                    fingerprint,
                    request.video.bucket,
                    request.video.key,
                    request.video.version,
                    request.min_confidence,
                    channel.sns_topic_arn if channel else None,
                    channel.role_arn if channel else None,
                    request.job_tag,
                    JobState.SUBMITTED.value,
                    model_version,
                    decode_mode,
                    request.adapter_arn,
                    now_ms(),
                ),
            )
        return job_id, True

    def get_job(self, job_id: str) -> JobRecord | None:
        row = (
            self._connection().execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        )
        return None if row is None else _job_from_row(row)

    def active_job_ids(self) -> list[str]:
        rows = (
            self._connection()
            .execute(
                f"SELECT job_id FROM jobs WHERE state IN ({_sql_parameter_marks(ACTIVE_STATES)}) ORDER BY created_ms",
                [state.value for state in ACTIVE_STATES],
            )
            .fetchall()
        )
        return [row["job_id"] for row in rows]

    def mark_running(self, job_id: str) -> JobRecord:
        """SUBMITTED -> RUNNING; a job already RUNNING (resumed after a restart) stays as it is."""
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT state FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            if row is not None and row["state"] != JobState.RUNNING.value:
                self._transition(connection, job_id, JobState.RUNNING, None, retention_s=None)
        return self.get_job(job_id)

    def _transition(
        self,
        connection: sqlite3.Connection,
        job_id: str,
        target: JobState,
        status_message: str | None,
        retention_s: float | None,
    ) -> None:
        row = connection.execute(
            "SELECT state, sns_topic_arn FROM jobs WHERE job_id = ?", (job_id,)
        ).fetchone()
        if row is None:
            raise KeyError(job_id)
        check_transition(JobState(row["state"]), target)
        if not target.is_terminal:
            connection.execute("UPDATE jobs SET state = ? WHERE job_id = ?", (target.value, job_id))
            return
        finished = now_ms()
        expires = None if retention_s is None else finished + int(retention_s * 1000)
        connection.execute(
            "UPDATE jobs SET state = ?, status_message = ?, finished_ms = ?, expires_ms = ?,"
            " notify_pending = ? WHERE job_id = ?",
            (
                target.value,
                status_message,
                finished,
                expires,
                int(row["sns_topic_arn"] is not None),
                job_id,
            ),
        )

    def fail_job(self, job_id: str, status_message: str, retention_s: float) -> JobRecord:
        with self._transaction() as connection:
            self._transition(connection, job_id, JobState.FAILED, status_message, retention_s)
            connection.execute("DELETE FROM segment_detections WHERE job_id = ?", (job_id,))
        return self.get_job(job_id)

    def save_metadata(self, job_id: str, metadata: VideoMetadata) -> None:
        with self._transaction() as connection:
            connection.execute(
                "UPDATE jobs SET metadata_json = ? WHERE job_id = ?",
                (json.dumps(metadata.__dict__), job_id),
            )

    # -- segments ----------------------------------------------------------------------------

    def save_plan(self, job_id: str, segments: Sequence[Segment]) -> list[Segment]:
        """Store the plan once; a plan already stored (a resumed job) wins and is returned."""
        with self._transaction() as connection:
            if not self._segments(connection, job_id):
                connection.executemany(
                    "INSERT INTO segments (job_id, seg_index, start_ms, stop_ms) VALUES (?,?,?,?)",
                    [(job_id, s.index, s.start_ms, s.stop_ms) for s in segments],
                )
            return [segment for segment, _ in self._segments(connection, job_id)]

    def pending_segments(self, job_id: str) -> list[Segment]:
        return [segment for segment, done in self._segments(self._connection(), job_id) if not done]

    @staticmethod
    def _segments(connection: sqlite3.Connection, job_id: str) -> list[tuple[Segment, bool]]:
        rows = connection.execute(
            "SELECT seg_index, start_ms, stop_ms, done FROM segments WHERE job_id = ? ORDER BY seg_index",
            (job_id,),
        ).fetchall()
        return [
            (Segment(row["seg_index"], row["start_ms"], row["stop_ms"]), bool(row["done"]))
            for row in rows
        ]

    def save_segment_result(
        self,
        job_id: str,
        seg_index: int,
        sample_timestamps_ms: Sequence[int],
        detections: Sequence[Detection],
    ) -> bool:
        """Store one finished segment atomically; False (and no write) if it was already stored."""
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT done FROM segments WHERE job_id = ? AND seg_index = ?", (job_id, seg_index)
            ).fetchone()
            if row is None:
                raise KeyError(f"segment {seg_index} of job {job_id} is not in its plan")
            if row["done"]:
                return False
            connection.executemany(
                "INSERT INTO segment_detections (job_id, seg_index, timestamp_ms, label_index, name,"
                " parent_name, level, confidence, content_types) VALUES (?,?,?,?,?,?,?,?,?)",
                [(job_id, seg_index, *_label_columns(d), _content_types_text(d))
                 for d in detections],
            )
            connection.execute(
                "UPDATE segments SET done = 1, samples_json = ? WHERE job_id = ? AND seg_index = ?",
                (json.dumps([int(t) for t in sample_timestamps_ms]), job_id, seg_index),
            )
        return True

    def segment_outputs(self, job_id: str) -> tuple[list[Detection], list[int]]:
        """Every stored detection of a job and every sampled timestamp, across its segments."""
        connection = self._connection()
        rows = connection.execute(
            "SELECT timestamp_ms, label_index, name, parent_name, level, confidence, content_types"
            " FROM segment_detections WHERE job_id = ?",
            (job_id,),
        ).fetchall()
        detections = [_detection_from_row(row) for row in rows]
        return detections, self.sample_timestamps(job_id)

    def sample_timestamps(self, job_id: str) -> list[int]:
        """Every sampled frame's timestamp of the finished segments, ascending (kept after the
        job completes, unlike segment_detections): SEGMENTS aggregation and the report's
        timeline x axis."""
        samples: set[int] = set()
        for row in self._connection().execute(
            "SELECT samples_json FROM segments WHERE job_id = ? AND done = 1", (job_id,)
        ):
            samples.update(json.loads(row["samples_json"] or "[]"))
        return sorted(samples)

    def segment_progress(self, job_id: str) -> tuple[int, int]:
        """(finished, planned) segments of a job; (0, 0) before its plan is stored."""
        row = (
            self._connection()
            .execute(
                "SELECT COALESCE(SUM(done), 0) AS done, COUNT(*) AS total FROM segments"
                " WHERE job_id = ?",
                (job_id,),
            )
            .fetchone()
        )
        return int(row["done"]), int(row["total"])

    # -- results -----------------------------------------------------------------------------

    def complete_job(
        self,
        job_id: str,
        by_time: dict[str, Sequence[Detection]],
        by_name: dict[str, Sequence[Detection]],
        retention_s: float,
    ) -> JobRecord:
        """Write the final rows (per aggregation, in both orders) and mark the job SUCCEEDED."""
        with self._transaction() as connection:
            connection.execute("DELETE FROM results WHERE job_id = ?", (job_id,))
            for aggregation, ordered in by_time.items():
                connection.executemany(
                    f"INSERT INTO results (job_id, aggregation, pos_time, pos_name, {_RESULT_COLUMNS})"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    _result_rows(
                        job_id, AGGREGATION_CODES[aggregation], ordered, by_name[aggregation]
                    ),
                )
            self._transition(connection, job_id, JobState.SUCCEEDED, None, retention_s)
            connection.execute("DELETE FROM segment_detections WHERE job_id = ?", (job_id,))
        return self.get_job(job_id)

    def read_results(
        self, job_id: str, aggregate_by: str, sort_by: str, position: int, limit: int
    ) -> list[Detection]:
        """Rows [position, position + limit) in the given order: one range scan of an index."""
        column = SORT_COLUMNS[sort_by]
        rows = (
            self._connection()
            .execute(
                f"SELECT {_RESULT_COLUMNS} FROM results WHERE job_id = ? AND aggregation = ? AND {column} >= ?"
                f" ORDER BY {column} LIMIT ?",
                (job_id, AGGREGATION_CODES[aggregate_by], position, limit),
            )
            .fetchall()
        )
        return [_detection_from_row(row) for row in rows]

    # -- inspection (metrics, health, `modengine jobs`) -------------------------------------------

    def count_jobs_by_state(self) -> dict[str, int]:
        """Jobs per state, every state present (0 when none): one scan of the state index."""
        counts = {state.value: 0 for state in JobState}
        for row in self._connection().execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state"):
            counts[row["state"]] = row["n"]
        return counts

    def list_jobs(self, state: JobState | None = None, limit: int = 50) -> list[JobRecord]:
        """The newest `limit` jobs (optionally of one state), newest first."""
        where, parameters = ("WHERE state = ?", [state.value]) if state else ("", [])
        rows = self._connection().execute(
            f"SELECT * FROM jobs {where} ORDER BY created_ms DESC, job_id LIMIT ?",
            [*parameters, int(limit)],
        ).fetchall()
        return [_job_from_row(row) for row in rows]

    def segment_rows(self, job_id: str) -> list[dict]:
        """The stored plan with per-segment progress: index, start_ms, stop_ms, done, samples."""
        rows = self._connection().execute(
            "SELECT seg_index, start_ms, stop_ms, done, samples_json FROM segments"
            " WHERE job_id = ? ORDER BY seg_index",
            (job_id,),
        ).fetchall()
        return [
            {
                "index": row["seg_index"],
                "start_ms": row["start_ms"],
                "stop_ms": row["stop_ms"],
                "done": bool(row["done"]),
                "samples": len(json.loads(row["samples_json"] or "[]")),
            }
            for row in rows
        ]

    def detection_count(self, job_id: str) -> int:
        """Detections of a job so far: final TIMESTAMPS rows once it succeeded, else the rows
        its finished segments stored (ancestor labels included in both)."""
        connection = self._connection()
        final = connection.execute(
            "SELECT COUNT(*) FROM results WHERE job_id = ? AND aggregation = ?",
            (job_id, AGGREGATION_CODES["TIMESTAMPS"]),
        ).fetchone()[0]
        if final:
            return final
        return connection.execute(
            "SELECT COUNT(*) FROM segment_detections WHERE job_id = ?", (job_id,)
        ).fetchone()[0]

    # -- retention ------------------------------------------------------------------------------

    def purge_expired(self, at_ms: int | None = None) -> int:
        """Delete jobs (and their rows) whose results have passed their retention time."""
        at_ms = now_ms() if at_ms is None else at_ms
        with self._transaction() as connection:
            expired = [
                row["job_id"]
                for row in connection.execute(
                    "SELECT job_id FROM jobs WHERE expires_ms IS NOT NULL AND expires_ms <= ?",
                    (at_ms,),
                )
            ]
            for job_id in expired:
                for table in (
                    "results",
                    "segment_detections",
                    "segments",
                    "notification_attempts",
                    "jobs",
                ):
                    connection.execute(f"DELETE FROM {table} WHERE job_id = ?", (job_id,))
        return len(expired)

    # -- notifications ---------------------------------------------------------------------------

    def record_notification_attempt(
        self, job_id: str, target: str, attempt: int, succeeded: bool, detail: str
    ) -> None:
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO notification_attempts (job_id, target, attempt, succeeded, detail, at_ms)"
                " VALUES (?,?,?,?,?,?)",
                (job_id, target, attempt, int(succeeded), detail[:1000], now_ms()),
            )

    def notification_attempts(self, job_id: str) -> list[dict]:
        rows = (
            self._connection()
            .execute(
                "SELECT target, attempt, succeeded, detail, at_ms FROM notification_attempts"
                " WHERE job_id = ? ORDER BY attempt_id",
                (job_id,),
            )
            .fetchall()
        )
        return [dict(row) for row in rows]

    def mark_notified(self, job_id: str) -> None:
        with self._transaction() as connection:
            connection.execute("UPDATE jobs SET notify_pending = 0 WHERE job_id = ?", (job_id,))

    def jobs_pending_notification(self) -> list[str]:
        rows = (
            self._connection()
            .execute("SELECT job_id FROM jobs WHERE notify_pending = 1")
            .fetchall()
        )
        return [row["job_id"] for row in rows]


def _sql_parameter_marks(values: Sequence) -> str:
    """"?,?,?" for an IN (...) clause with one bound parameter per value."""
    return ",".join("?" * len(values))


def _result_rows(
    job_id: str, aggregation_code: str, by_time: Sequence[Detection], by_name: Sequence[Detection]
):
    name_position = {id(detection): position for position, detection in enumerate(by_name)}
    if len(name_position) != len(by_time):
        raise ValueError("both orders must hold the same detection objects")
    for position, d in enumerate(by_time):
        yield (
            job_id, aggregation_code, position, name_position[id(d)],
            *_label_columns(d), d.start_ms, d.end_ms, _content_types_text(d),
        )


def _label_columns(d: Detection) -> tuple:
    """A detection's columns shared by segment rows and result rows, in table order."""
    return (d.timestamp_ms, d.label_index, d.name, d.parent_name, d.level, d.confidence)


def _detection_from_row(row: sqlite3.Row) -> Detection:
    """A stored detection; segment rows have no start/end columns (TIMESTAMPS detections)."""
    spans = row.keys()
    return Detection(
        timestamp_ms=row["timestamp_ms"],
        name=row["name"],
        parent_name=row["parent_name"],
        level=row["level"],
        confidence=row["confidence"],
        label_index=row["label_index"],
        start_ms=row["start_ms"] if "start_ms" in spans else None,
        end_ms=row["end_ms"] if "end_ms" in spans else None,
        content_types=tuple(ContentType(name, confidence)
                            for name, confidence in json.loads(row["content_types"] or "[]")),
    )


def _content_types_text(d: Detection) -> str:
    """A detection's content types as stored: JSON [[name, confidence], ...], '' for none."""
    if not d.content_types:
        return ""
    return json.dumps([[content_type.name, content_type.confidence]
                       for content_type in d.content_types])


def _job_from_row(row: sqlite3.Row) -> JobRecord:
    channel = None
    if row["sns_topic_arn"] is not None:
        channel = NotificationChannel(sns_topic_arn=row["sns_topic_arn"], role_arn=row["role_arn"])
    metadata = VideoMetadata(**json.loads(row["metadata_json"])) if row["metadata_json"] else None
    return JobRecord(
        job_id=row["job_id"],
        account=row["account"],
        video=ObjectRef(row["bucket"], row["object_key"], row["object_version"]),
        min_confidence=row["min_confidence"],
        state=JobState(row["state"]),
        created_ms=row["created_ms"],
        model_version=row["model_version"],
        decode_mode=row["decode_mode"],
        client_request_token=row["client_token"],
        notification_channel=channel,
        job_tag=row["job_tag"],
        status_message=row["status_message"],
        metadata=metadata,
        finished_ms=row["finished_ms"],
        adapter_arn=row["adapter_arn"],
    )
