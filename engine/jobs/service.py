"""The two operations' behaviour: start a job, read a page of its results.

`api` calls these with parsed requests and the caller's account; they raise the contract's
errors (engine/errors.py) and never see HTTP. Starting checks the object (InvalidS3Object,
VideoTooLarge), applies idempotency and the concurrent-job limit in one SQLite transaction,
and hands the job to the executor; reading never touches Ray.
"""

from __future__ import annotations

import secrets

from engine.config import EngineSettings
from engine.errors import ResourceNotFoundException, VideoTooLargeException
from engine.jobs.store import JobStore, now_ms
from engine.jobs.tokens import PageQuery, PageTokenCodec
from engine.jobs.types import GetRequest, JobRecord, JobState, ResultPage, StartRequest
from engine.storage.base import ObjectStore

MAX_PAGE_SIZE = 1000


def new_job_id() -> str:
    """64 hex characters, like the real service's JobIds."""
    return secrets.token_hex(32)


class ModerationService:
    def __init__(
        self,
        settings: EngineSettings,
        store: JobStore,
        objects: ObjectStore,
        tokens: PageTokenCodec,
        submit_job,
    ) -> None:
        self.settings = settings
        self.store = store
        self.objects = objects
        self.tokens = tokens
        self._submit_job = submit_job

    def start_content_moderation(self, account: str, request: StartRequest) -> str:
        info = self.objects.stat(request.video)
        if info.size_bytes > self.settings.max_object_bytes:
            raise VideoTooLargeException(
                f"The object {request.video.describe()} is {info.size_bytes} bytes; "
                f"the maximum is {self.settings.max_object_bytes} bytes"
            )
        self.store.purge_expired()
        job_id, created = self.store.create_job(
            new_job_id(),
            account,
            request,
            model_version=self.settings.model_version,
            max_active_jobs=self.settings.max_concurrent_jobs,
        )
        if created:
            self._submit_job(job_id)
        return job_id

    def get_content_moderation(self, account: str, request: GetRequest) -> ResultPage:
        job = self._visible_job(account, request.job_id)
        query = PageQuery(job.job_id, request.sort_by, request.aggregate_by)
        position = self.tokens.verify(query, request.next_token) if request.next_token else 0
        page_size = min(request.max_results, MAX_PAGE_SIZE)
        detections: list[dict] = []
        next_token = None
        if job.state is JobState.SUCCEEDED:
            rows = self.store.read_results(
                job.job_id, request.aggregate_by, request.sort_by, position, page_size + 1
            )
            detections = [row.to_wire() for row in rows[:page_size]]
            if len(rows) > page_size:
                next_token = self.tokens.issue(query, position + page_size)
        return ResultPage(job, detections, next_token, request.sort_by, request.aggregate_by)

    def _visible_job(self, account: str, job_id: str) -> JobRecord:
        """The caller's own job whose results are still kept; otherwise ResourceNotFound."""
        job = self.store.get_job(job_id)
        if job is None or job.account != account or self._expired(job):
            raise ResourceNotFoundException(f"No content moderation job with JobId {job_id!r}")
        return job

    def _expired(self, job: JobRecord) -> bool:
        if job.finished_ms is None:
            return False
        return now_ms() >= job.finished_ms + int(self.settings.result_retention_s * 1000)
