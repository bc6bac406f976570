"""Durable state of Custom Moderation adapters, in the jobs' SQLite file (engine/jobs/sqlite.py).

Tables: `projects` (unique per account + name), `project_versions` (unique per project + name;
the parsed request, status, evaluation and training attempts) and `account_settings` (the
adapter an account's video jobs use). Every read is scoped by account: another account's ARN
is simply not found. Knows nothing about HTTP, Ray or the wire.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine.errors import LimitExceededException, ResourceInUseException
from engine.jobs.adapter_types import (
    Evaluation,
    ProjectRecord,
    VersionRecord,
    VersionRequest,
    VersionStatus,
)
from engine.jobs.sqlite import SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    project_arn TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    feature TEXT NOT NULL,
    auto_update TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS projects_by_name ON projects(account, name);
CREATE TABLE IF NOT EXISTS project_versions (
    version_arn TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    project_arn TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT,
    confidence_threshold REAL NOT NULL,
    request_json TEXT NOT NULL,
    evaluation_json TEXT,
    base_model_version TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    training_end_ms INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS versions_by_name ON project_versions(project_arn, name);
CREATE INDEX IF NOT EXISTS versions_by_status ON project_versions(status);
CREATE TABLE IF NOT EXISTS account_settings (
    account TEXT PRIMARY KEY,
    video_adapter_arn TEXT
);
"""


class AdapterStore(SqliteDatabase):
    """All reads and writes of projects and versions; one SQLite connection per thread."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._connection().executescript(_SCHEMA)

    # -- projects ----------------------------------------------------------------------------

    def create_project(self, project: ProjectRecord) -> None:
        with self._transaction() as connection:
            _refuse_taken(connection, "project", "SELECT project_arn AS arn FROM projects"
                          " WHERE account = ? AND name = ?", (project.account, project.name),
                          project.name)
            connection.execute(
                "INSERT INTO projects (project_arn, account, name, feature, auto_update,"
                " created_ms) VALUES (?,?,?,?,?,?)",
                (project.arn, project.account, project.name, project.feature,
                 project.auto_update, project.created_ms))

    def get_project(self, account: str, arn: str) -> ProjectRecord | None:
        return self._one(_project, "SELECT * FROM projects WHERE project_arn = ? AND account = ?",
                         (arn, account))

    def _one(self, record, query: str, parameters: tuple):
        """The record of the one row `query` finds, or None."""
        row = self._connection().execute(query, parameters).fetchone()
        return None if row is None else record(row)

    def list_projects(self, account: str) -> list[ProjectRecord]:
        rows = self._connection().execute(
            "SELECT * FROM projects WHERE account = ? ORDER BY created_ms DESC, name", (account,)
        ).fetchall()
        return [_project(row) for row in rows]

    def delete_project(self, account: str, arn: str) -> bool:
        with self._transaction() as connection:
            versions = connection.execute(
                "SELECT COUNT(*) FROM project_versions WHERE project_arn = ? AND account = ?",
                (arn, account)).fetchone()[0]
            if versions:
                raise ResourceInUseException(
                    f"The project {arn} still has {versions} version(s); delete them first")
            return connection.execute(
                "DELETE FROM projects WHERE project_arn = ? AND account = ?", (arn, account)
            ).rowcount > 0

    # -- versions ----------------------------------------------------------------------------

    def create_version(self, version: VersionRecord, max_in_progress: int) -> None:
        with self._transaction() as connection:
            _refuse_taken(connection, "version", "SELECT version_arn AS arn FROM project_versions"
                          " WHERE project_arn = ? AND name = ?",
                          (version.project_arn, version.name), version.name)
            training = connection.execute(
                "SELECT COUNT(*) FROM project_versions WHERE account = ? AND status = ?",
                (version.account, VersionStatus.TRAINING_IN_PROGRESS.value)).fetchone()[0]
            if training >= max_in_progress:
                raise LimitExceededException(
                    f"{training} adapter trainings of this account are in progress; at most "
                    f"{max_in_progress} may run at once")
            connection.execute(
                "INSERT INTO project_versions (version_arn, account, project_arn, name, status,"
                " confidence_threshold, request_json, base_model_version, created_ms)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (version.arn, version.account, version.project_arn, version.name,
                 version.status.value, version.confidence_threshold, version.request.to_json(),
                 version.base_model_version, version.created_ms))

    def get_version(self, account: str, arn: str) -> VersionRecord | None:
        return self._one(_version, "SELECT * FROM project_versions"
                         " WHERE version_arn = ? AND account = ?", (arn, account))

    def version_by_arn(self, arn: str) -> VersionRecord | None:
        """For the trainer only (it acts for the account that created the version)."""
        row = self._connection().execute(
            "SELECT * FROM project_versions WHERE version_arn = ?", (arn,)).fetchone()
        return None if row is None else _version(row)

    def list_versions(self, account: str, project_arn: str) -> list[VersionRecord]:
        rows = self._connection().execute(
            "SELECT * FROM project_versions WHERE project_arn = ? AND account = ?"
            " ORDER BY created_ms DESC, name", (project_arn, account)).fetchall()
        return [_version(row) for row in rows]

    def versions_in_progress(self) -> list[VersionRecord]:
        rows = self._connection().execute(
            "SELECT * FROM project_versions WHERE status = ? ORDER BY created_ms",
            (VersionStatus.TRAINING_IN_PROGRESS.value,)).fetchall()
        return [_version(row) for row in rows]

    def count_attempt(self, arn: str) -> int:
        """Record that a training of this version starts; returns how many have started."""
        with self._transaction() as connection:
            connection.execute(
                "UPDATE project_versions SET attempts = attempts + 1 WHERE version_arn = ?", (arn,))
            return connection.execute(
                "SELECT attempts FROM project_versions WHERE version_arn = ?", (arn,)
            ).fetchone()[0]

    def finish_version(self, arn: str, status: VersionStatus, message: str | None,
                       evaluation: Evaluation | None, finished_ms: int) -> bool:
        """TRAINING_IN_PROGRESS -> `status`; False if the version is gone or already finished
        (deleted meanwhile: nothing to record)."""
        with self._transaction() as connection:
            return connection.execute(
                "UPDATE project_versions SET status = ?, status_message = ?, evaluation_json = ?,"
                " training_end_ms = ? WHERE version_arn = ? AND status = ?",
                (status.value, message, evaluation.to_json() if evaluation else None,
                 finished_ms, arn, VersionStatus.TRAINING_IN_PROGRESS.value)).rowcount > 0

    def delete_version(self, account: str, arn: str) -> bool:
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT status FROM project_versions WHERE version_arn = ? AND account = ?",
                (arn, account)).fetchone()
            if row is None:
                return False
            if row["status"] == VersionStatus.TRAINING_IN_PROGRESS.value:
                raise ResourceInUseException(
                    f"The version {arn} is still training; delete it once it has finished")
            used = connection.execute(
                "SELECT account FROM account_settings WHERE video_adapter_arn = ?", (arn,)
            ).fetchone()
            if used is not None:
                raise ResourceInUseException(
                    f"The version {arn} is this account's adapter for video jobs; clear it "
                    "first (modengine adapters use --clear)")
            connection.execute("DELETE FROM project_versions WHERE version_arn = ?", (arn,))
            return True

    # -- the adapter of an account's video jobs ------------------------------------------------

    def set_video_adapter(self, account: str, arn: str | None) -> None:
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO account_settings (account, video_adapter_arn) VALUES (?, ?)"
                " ON CONFLICT(account) DO UPDATE SET video_adapter_arn = excluded.video_adapter_arn",
                (account, arn))

    def video_adapter(self, account: str) -> str | None:
        row = self._connection().execute(
            "SELECT video_adapter_arn FROM account_settings WHERE account = ?", (account,)
        ).fetchone()
        return None if row is None else row["video_adapter_arn"]


def _project(row: sqlite3.Row) -> ProjectRecord:
    return ProjectRecord(row["project_arn"], row["account"], row["name"], row["feature"],
                         row["auto_update"], row["created_ms"])


def _version(row: sqlite3.Row) -> VersionRecord:
    return VersionRecord(
        arn=row["version_arn"], account=row["account"], project_arn=row["project_arn"],
        name=row["name"], status=VersionStatus(row["status"]), created_ms=row["created_ms"],
        request=VersionRequest.from_json(row["request_json"]),
        confidence_threshold=row["confidence_threshold"], status_message=row["status_message"],
        training_end_ms=row["training_end_ms"],
        evaluation=Evaluation.from_json(row["evaluation_json"]) if row["evaluation_json"] else None,
        base_model_version=row["base_model_version"], attempts=row["attempts"])


def _refuse_taken(connection, kind: str, query: str, parameters: tuple, name: str) -> None:
    """ResourceInUseException when `query` (selecting `arn`) finds a {kind} of that name."""
    taken = connection.execute(query, parameters).fetchone()
    if taken is not None:
        raise ResourceInUseException(f"A {kind} named {name!r} exists already: {taken['arn']}")
