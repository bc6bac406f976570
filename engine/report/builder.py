"""Build one job's report page: find the job (scoped to an account), read its rows, decode the
flagged frames, render the page.

This is the seam the CLI and the server use (`JobReportBuilder.build`, or the builder itself as
build_app's `report_builder`, which calls `for_account`), so engine/api never imports PyAV. A thumbnail failure (object
gone, unreadable video) never fails the report: the page says why they are missing.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from engine.config import EngineSettings
from engine.errors import ServiceError, ThrottlingException
from engine.jobs.store import JobStore
from engine.jobs.visibility import visible_job
from engine.report.chart import build_series
from engine.report.data import ReportData, load_report_data
from engine.report.page import CONTENT_SECURITY_POLICY, ThumbnailSection, render_report
from engine.report.thumbnails import choose_moments, make_thumbnails
from engine.storage.base import ObjectStore
from engine.video.types import VideoError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportOptions:
    """Caps that keep a report of a long, heavily flagged video fast and readable."""

    max_thumbnails: int = 24
    """Flagged moments decoded at most (each costs a seek and up to one GOP of decoding)."""
    max_table_rows: int = 5000
    """SEGMENTS rows listed at most; the page says when rows were left out."""
    thumbnails: bool = True
    """False skips decoding entirely (the page then has no flagged-frame section)."""
    max_concurrent_builds: int = 2
    """Server-side reports built at once: each decodes video (about 2 s of a core for 720p),
    so a burst of report requests must not take the cores the jobs need."""


class JobReportBuilder:
    """Reports for the jobs of one store; safe to call from several threads."""

    content_security_policy = CONTENT_SECURITY_POLICY
    """What the page may load (nothing but its own data: images); the server sends it too."""

    def __init__(
        self,
        settings: EngineSettings,
        store: JobStore,
        objects: ObjectStore,
        options: ReportOptions | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.objects = objects
        self.options = options or ReportOptions()
        self._server_builds = threading.BoundedSemaphore(self.options.max_concurrent_builds)

    def build(self, job_id: str, *, unblurred: bool = False, account: str | None = None) -> str:
        """The page's HTML. `account` None (a local operator) sees every job; otherwise an
        unknown, expired or other account's job raises ResourceNotFoundException."""
        job = visible_job(self.store, job_id, account, self.settings.result_retention_s)
        data = load_report_data(
            self.store, job, job.decode_mode, self.settings.sample_interval_ms
        )
        series = build_series(data.detections, data.sample_timestamps_ms)
        thumbnails = self._thumbnails(data, blurred=not unblurred) if data.succeeded else None
        return render_report(data, series, thumbnails, self.options.max_table_rows)

    def for_account(self, account: str, job_id: str, unblurred: bool) -> str:
        """The callable engine.api.build_app takes: (account, job_id, unblurred) -> HTML.

        At most `max_concurrent_builds` at once; one more is refused at once with
        ThrottlingException (which clients retry) rather than queued behind the others."""
        if not self._server_builds.acquire(blocking=False):
            raise ThrottlingException(
                f"{self.options.max_concurrent_builds} reports are being built; retry shortly"
            )
        try:
            return self.build(job_id, unblurred=unblurred, account=account)
        finally:
            self._server_builds.release()

    def _thumbnails(self, data: ReportData, blurred: bool) -> ThumbnailSection | None:
        if not self.options.thumbnails:
            return None
        moments, total = choose_moments(
            data.detections, data.segments, self.options.max_thumbnails
        )
        section = ThumbnailSection((), total, self.options.max_thumbnails, blurred)
        if not moments:
            return section
        try:
            source = self.objects.source_for(data.job.video)
            thumbnails = make_thumbnails(
                source,
                moments,
                blurred=blurred,
                hwaccel=self.settings.hwaccel,
                threads=self.settings.effective_decode_threads,
            )
        except (VideoError, ServiceError, OSError) as error:
            log.warning("report of job %s: no thumbnails: %s", data.job.job_id, error)
            reason = getattr(error, "message", None) or str(error)
            return ThumbnailSection((), total, self.options.max_thumbnails, blurred, reason)
        return ThumbnailSection(thumbnails, total, self.options.max_thumbnails, blurred)
