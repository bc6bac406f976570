"""`modengine report JOB_ID`: write a job's report page from the local data directory.

The CLI parses arguments and calls `write_report`; errors a person can fix come back as
`ReportCommandError` with the message to print. (The presigned link to the server's page,
`--url`, is the API's: engine/api/report_route.py `report_link`.)
"""

from __future__ import annotations

from pathlib import Path

from engine.config import EngineSettings
from engine.errors import ResourceNotFoundException
from engine.jobs import DATABASE_FILE
from engine.jobs.store import JobStore
from engine.report.builder import JobReportBuilder
from engine.storage import open_object_store


class ReportCommandError(Exception):
    """Something the user must fix (unknown job, no job store); the message says what."""


def write_report(
    settings: EngineSettings, job_id: str, output: Path | None, unblurred: bool
) -> Path:
    """Write the page to `output` (default ./<job_id>.html) and return its path."""
    database = Path(settings.data_dir) / DATABASE_FILE
    if not database.is_file():
        raise ReportCommandError(
            f"no job store in {settings.data_dir} (give the server's --data-dir)"
        )
    store = JobStore(database)
    try:
        builder = JobReportBuilder(settings, store, open_object_store(settings))
        page = builder.build(job_id, unblurred=unblurred)
    except ResourceNotFoundException:
        raise ReportCommandError(
            f"no job {job_id!r} in {settings.data_dir} (unknown, or its results expired)"
        ) from None
    finally:
        store.close()
    path = Path(output) if output is not None else Path.cwd() / f"{job_id}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
