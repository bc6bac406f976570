"""The two operations' behaviour: start a job, read a page of its results.

`api` calls these with parsed requests and the caller's account; they raise the contract's
errors (engine/errors.py) and never see HTTP. Starting checks the object through the one access
gate (engine/storage/access.py: `readable_object`, InvalidS3Object for anything the account may
not read), then its size (VideoTooLarge), applies idempotency and the concurrent-job limit in one SQLite transaction,
and hands the job to the executor; reading never touches Ray.

DetectModerationLabels is synchronous: the image is decoded here (engine/video/image.py, the
same scaling as video frames, at most `max_concurrent_image_decodes` at once; its errors become
the contract's) and its one frame goes through the runner's inference pool, the model the jobs
use.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from engine.config import EngineSettings
from engine.errors import (
    ImageTooLargeException,
    InternalServerError,
    InvalidImageFormatException,
    VideoTooLargeException,
)
from engine.jobs.adapters import AdapterService
from engine.jobs.images import image_moderation, read_image_object
from engine.jobs.pipeline import SegmentRunner
from engine.jobs.store import JobStore
from engine.jobs.tokens import PageQuery, PageTokenCodec
from engine.jobs.types import (
    GetRequest,
    ImageModeration,
    JobState,
    ResultPage,
    StartRequest,
)
from engine.jobs.visibility import visible_job
from engine.results.types import Detection
from engine.storage.access import readable_object
from engine.storage.base import ObjectRef, ObjectStore
from engine.video.image import ImageLimits, ImageTooLargeError, InvalidImageError, image_frame

if TYPE_CHECKING:  # media_analysis imports this module (new_job_id)
    from engine.jobs.media_analysis import MediaAnalysisService

MAX_PAGE_SIZE = 1000


def new_job_id() -> str:
    """64 hex characters, like the real service's JobIds."""
    return secrets.token_hex(32)


class ModerationService:
    """The operations' behaviour for one job store. `submit_job(job_id)` hands an accepted job
    to the executor; `shared_runner()` returns the runner the jobs use (JobExecutor.runner),
    where images are classified; None: this service moderates no images."""

    def __init__(
        self,
        settings: EngineSettings,
        store: JobStore,
        objects: ObjectStore,
        tokens: PageTokenCodec,
        submit_job: Callable[[str], None],
        shared_runner: Callable[[], SegmentRunner] | None = None,
        adapters: AdapterService | None = None,
        media: MediaAnalysisService | None = None,
    ) -> None:
        self.settings, self.store, self.objects, self.tokens = settings, store, objects, tokens
        self.adapters = adapters
        """Custom Moderation projects and versions (engine/jobs/adapters.py)."""
        self.media = media
        """Media analysis jobs (engine/jobs/media_analysis.py)."""
        self._submit_job = submit_job
        self._shared_runner = shared_runner
        self._image_decodes = threading.BoundedSemaphore(settings.max_concurrent_image_decodes)

    def start_content_moderation(self, account: str, request: StartRequest) -> str:
        """Accept a job; the account's video adapter (if it set one) is recorded with it."""
        adapter = self.adapters.video_adapter(account) if self.adapters is not None else None
        if adapter is not None:
            self.adapters.usable_adapter(account, adapter)
            request = replace(request, adapter_arn=adapter)
        info = readable_object(self.objects, account, request.video)
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
            decode_mode=self.settings.decode_mode,
        )
        if created:
            self._submit_job(job_id)
        return job_id

    def get_content_moderation(self, account: str, request: GetRequest) -> ResultPage:
        job = visible_job(self.store, request.job_id, account, self.settings.result_retention_s)
        query = PageQuery(job.job_id, request.sort_by, request.aggregate_by)
        position = self.tokens.verify(query, request.next_token) if request.next_token else 0
        page_size = min(request.max_results, MAX_PAGE_SIZE)
        detections: list[Detection] = []
        next_token = None
        if job.state is JobState.SUCCEEDED:
            rows = self.store.read_results(
                job.job_id, request.aggregate_by, request.sort_by, position, page_size + 1
            )
            detections = rows[:page_size]
            if len(rows) > page_size:
                next_token = self.tokens.issue(query, position + page_size)
        return ResultPage(job, detections, next_token, request.sort_by, request.aggregate_by)

    @property
    def max_image_bytes(self) -> int:
        """Largest raw Image.Bytes accepted (the API sizes its request-body limit from it)."""
        return self.settings.max_image_bytes

    def detect_moderation_labels(
        self, account: str, image: bytes | ObjectRef, min_confidence: float,
        project_version: str | None = None,
    ) -> ImageModeration:
        """One image through the model the video jobs use, labelled by the same rules (threshold,
        every ancestor as its own entry), most confident first. With `project_version` (an
        adapter of this account) its labels are merged into the model's."""
        adapter_path = None
        if project_version is not None:
            if self.adapters is None:
                raise InternalServerError("Adapters are not configured on this server")
            adapter_path = self.adapters.usable_adapter(account, project_version)
        data, max_bytes = self._image_bytes(account, image)
        if self._shared_runner is None:
            raise InternalServerError("Image moderation is not configured on this server")
        runner = self._shared_runner()
        limits = ImageLimits(
            max_bytes, self.settings.max_image_side_px, self.settings.max_image_pixels
        )
        try:
            with self._image_decodes:
                frame = image_frame(data, runner.model_info.input_size, limits)
        except InvalidImageError as error:
            raise InvalidImageFormatException(str(error)) from None
        except ImageTooLargeError as error:
            raise ImageTooLargeException(str(error)) from None
        if adapter_path is None:
            scores, taxonomy = runner.classify_frames(frame[np.newaxis])[0], runner.taxonomy
        else:
            scores = runner.classify_frames(frame[np.newaxis], adapter_path)[0]
            taxonomy = runner.taxonomy_for(adapter_path)
        return image_moderation(scores, taxonomy, runner.model_info.content_types,
                                min_confidence, self.settings.model_version, project_version)

    def _image_bytes(self, account: str, image: bytes | ObjectRef) -> tuple[bytes, int]:
        """The encoded image and the byte limit that applies to where it came from."""
        if not isinstance(image, ObjectRef):
            return image, self.settings.max_image_bytes
        limit = self.settings.max_image_object_bytes
        return read_image_object(self.objects, account, image, limit), limit
