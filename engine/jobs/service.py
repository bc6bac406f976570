"""The two operations' behaviour: start a job, read a page of its results.

`api` calls these with parsed requests and the caller's account; they raise the contract's
errors (engine/errors.py) and never see HTTP. Starting checks the object (InvalidS3Object,
VideoTooLarge), applies idempotency and the concurrent-job limit in one SQLite transaction,
and hands the job to the executor; reading never touches Ray.

DetectModerationLabels is synchronous: the image is decoded here (engine/video/image.py, the
same scaling as video frames, at most `max_concurrent_image_decodes` at once) and its one frame
goes through the runner's inference pool, the model the jobs use.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass

import numpy as np

from engine.config import EngineSettings
from engine.errors import (
    ImageTooLargeException,
    InternalServerError,
    ResourceNotFoundException,
    VideoTooLargeException,
)
from engine.jobs.store import JobStore, now_ms
from engine.jobs.tokens import PageQuery, PageTokenCodec
from engine.jobs.types import GetRequest, JobRecord, JobState, ResultPage, StartRequest
from engine.results import FrameScores, build_detections
from engine.results.types import Detection
from engine.storage.base import ObjectRef, ObjectStore
from engine.video.image import ImageLimits, image_frame

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
        runner=None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.objects = objects
        self.tokens = tokens
        self._submit_job = submit_job
        self._runner = runner
        """Returns the shared cluster runner (JobExecutor.runner); images are classified there."""
        self._image_decodes = threading.BoundedSemaphore(settings.max_concurrent_image_decodes)

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
            decode_mode=self.settings.decode_mode,
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

    @property
    def max_image_bytes(self) -> int:
        """Largest raw Image.Bytes accepted (the API sizes its request-body limit from it)."""
        return self.settings.max_image_bytes

    def detect_moderation_labels(
        self, account: str, image: bytes | ObjectRef, min_confidence: float
    ) -> ImageModeration:
        """One image through the model the video jobs use, labelled by the same rules (threshold,
        every ancestor as its own entry), most confident first."""
        data, max_bytes = self._image_bytes(image)
        if self._runner is None:
            raise InternalServerError("Image moderation is not configured on this server")
        runner = self._runner()
        limits = ImageLimits(
            max_bytes, self.settings.max_image_side_px, self.settings.max_image_pixels
        )
        with self._image_decodes:
            frame = image_frame(data, runner.model_info.input_size, limits)
        scores = runner.classify_frames(frame[np.newaxis])
        detections = build_detections(
            runner.taxonomy, [FrameScores(timestamp_ms=0, confidences=scores[0])], min_confidence
        )
        return ImageModeration(sort_by_confidence(detections), self.settings.model_version)

    def _image_bytes(self, image: bytes | ObjectRef) -> tuple[bytes, int]:
        """The encoded image and the byte limit that applies to where it came from."""
        if not isinstance(image, ObjectRef):
            return image, self.settings.max_image_bytes
        limit = self.settings.max_image_object_bytes
        size = self.objects.stat(image).size_bytes
        if size > limit:
            raise ImageTooLargeException(
                f"The object {image.describe()} is {size} bytes; the maximum for an image is "
                f"{limit} bytes"
            )
        # Read one byte past the limit: an object that grew since `stat` is still refused as
        # too large, never read in full.
        data = self.objects.get_bytes(image, max_bytes=limit + 1)
        if len(data) > limit:
            raise ImageTooLargeException(
                f"The image object {image.describe()} is larger than the maximum of {limit} bytes"
            )
        return data, limit

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


@dataclass(frozen=True)
class ImageModeration:
    """DetectModerationLabels' answer before it is put on the wire."""

    labels: list[Detection]
    """One entry per detected label and per ancestor, most confident first."""
    model_version: str


def sort_by_confidence(detections: list[Detection]) -> list[Detection]:
    """Rekognition's image order: confidence descending; on a tie the parent (which always
    scores at least its child) comes first, then by name, so the order is deterministic."""
    return sorted(detections, key=lambda d: (-d.confidence, d.level, d.name, d.label_index))
