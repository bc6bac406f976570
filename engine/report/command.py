"""`modengine report JOB_ID`: write a job's report page from the local data directory, or print
a presigned link to the server's `GET /jobs/{id}/report` for a browser.

The CLI parses arguments and calls `write_report` / `report_link`; errors a person can fix
come back as `ReportCommandError` with the message to print.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from engine.config import EngineSettings
from engine.errors import ResourceNotFoundException
from engine.jobs import DATABASE_FILE
from engine.jobs.store import JobStore
from engine.report.builder import JobReportBuilder
from engine.storage import open_object_store

DEFAULT_LINK_EXPIRES_S = 3600


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


def report_link(
    settings: EngineSettings,
    job_id: str,
    endpoint: str | None,
    unblurred: bool,
    expires_s: int = DEFAULT_LINK_EXPIRES_S,
) -> str:
    """A presigned GET link to the server's report of `job_id`, signed with the [default] key of
    the server's generated credentials file (<data_dir>/credentials)."""
    from engine.api.keys import read_default_key
    from engine.api.settings import ApiSettings
    from engine.api.sigv4 import MAX_PRESIGN_EXPIRES_S, presign_url

    if not 1 <= expires_s <= MAX_PRESIGN_EXPIRES_S:
        raise ReportCommandError(f"--expires must be 1..{MAX_PRESIGN_EXPIRES_S} seconds")
    credentials_file = ApiSettings.from_engine_settings(settings).credentials_file
    if credentials_file is None or not Path(credentials_file).is_file():
        raise ReportCommandError(
            f"no credentials file at {credentials_file} (start the server once, or give its "
            "--data-dir)"
        )
    key = read_default_key(Path(credentials_file))
    base = (endpoint or f"http://{settings.host}:{settings.port}").rstrip("/")
    url = f"{base}/jobs/{quote(job_id, safe='')}/report"
    if unblurred:
        url += "?unblurred=true"
    return presign_url(
        url, key.access_key_id, key.secret_access_key, settings.s3_region, expires_s
    )
