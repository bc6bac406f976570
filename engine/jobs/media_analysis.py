"""Media analysis jobs (StartMediaAnalysisJob / GetMediaAnalysisJob / ListMediaAnalysisJobs):
DetectModerationLabels, with an optional adapter, over a manifest of images in S3.

Start checks what it can at once (the adapter is this account's and usable, the manifest is
readable, not too long, and names at least one image: ResourceNotFound / ResourceNotReady /
InvalidS3Object / InvalidManifest), records the job QUEUED with the jobs (idempotent per
ClientRequestToken) and queues it. A media thread then reads the manifest again, reads the
images in chunks, has them scored on Ray Data (the backend's `score_images`, engine/batch/images.py,
classifying on the runner's inference actors, as DetectModerationLabels does),
labels each image as DetectModerationLabels does (engine/jobs/images.py) and writes the results
manifest (each valid input line plus "detect-moderation-labels") and the manifest summary
(statistics and per-line errors, AWS's format) to the output location. A failure of the job as
a whole is FAILED with FailureDetails; a restart runs unfinished jobs again, up to
MAX_RUN_ATTEMPTS starts, then fails them with a message, so none stays IN_PROGRESS.

Every manifest and image passes the account's access gate (engine/storage/access.py) before
it is read, and the output location must be one the account may write. Knows nothing about HTTP; the wire shape of one image's labels comes from
the backend (engine/api/wire.py, wired by engine/server.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from engine.cluster import RunnerStoppedError, describe_exception
from engine.config import EngineSettings
from engine.errors import (
    ImageTooLargeException,
    InternalServerError,
    InvalidManifestException,
    InvalidS3ObjectException,
    ResourceNotFoundException,
    ResourceNotReadyException,
    ServiceError,
)
from engine.jobs.adapters import AdapterService
from engine.jobs.images import image_moderation, read_image_object
from engine.jobs.manifests import manifest_lines, parse_s3_url
from engine.jobs.media_store import MediaAnalysisStore
from engine.jobs.media_types import (
    FailureCode,
    MediaAnalysisRecord,
    MediaAnalysisRequest,
    MediaJobStatus,
    MediaOutputs,
)
from engine.jobs.pipeline import SegmentRunner
from engine.jobs.store import now_ms
from engine.jobs.tokens import PageQuery, PageTokenCodec
from engine.jobs.types import ImageModeration
from engine.jobs.workers import QueuedWorkService
from engine.storage.access import readable_object, writable_location
from engine.storage.base import ObjectRef, ObjectStore

log = logging.getLogger(__name__)

MAX_RUN_ATTEMPTS = 3
CHUNK_IMAGES = 64
"""Images read and handed to Ray Data at once: bounds the encoded bytes the job holds."""
RESULTS_NAME = "results.jsonl"
SUMMARY_NAME = "manifest-summary.json"
RESULT_MEMBER = "detect-moderation-labels"
FAILURE_CODES = {
    InvalidS3ObjectException: FailureCode.INVALID_S3_OBJECT,
    InvalidManifestException: FailureCode.INVALID_MANIFEST,
    ResourceNotFoundException: FailureCode.RESOURCE_NOT_FOUND,
    ResourceNotReadyException: FailureCode.RESOURCE_NOT_READY,
}


@dataclass(frozen=True)
class MediaAnalysisBackend:
    """What engine/server.py plugs in from the layers this one may not import."""

    score_images: Callable[..., Iterable]
    """engine.batch.images.score_images(settings, [(key, bytes)], input_size, adapter_path,
    pool_actors): yields objects with `key`, `scores` (None on failure), `error`, `too_large`."""
    moderation_to_wire: Callable[[ImageModeration], dict]
    """engine.api.wire.image_moderation_to_wire: DetectModerationLabels' response shape."""


@dataclass(frozen=True)
class ManifestLine:
    """One input line with a usable source-ref."""

    number: int
    document: dict
    image: ObjectRef


@dataclass(frozen=True)
class Labelling:
    """How one run scores and labels its images (as DetectModerationLabels would)."""

    taxonomy: object
    """The label columns of the scores (the model's, widened by the adapter's labels)."""
    model_info: object
    adapter_path: str | None
    min_confidence: float
    project_version: str | None
    actors: list
    """The runner's inference actors (opaque here), where the images are classified."""


class OutputWriteError(RuntimeError):
    """Not a contract error: the output location refused a write (INVALID_OUTPUT_CONFIG)."""


class MediaAnalysisService(QueuedWorkService):
    """Media analysis jobs of one store; `runner()` is the cluster runner the jobs use."""

    def __init__(self, settings: EngineSettings, store: MediaAnalysisStore, objects: ObjectStore,
                 tokens: PageTokenCodec, runner: Callable[[], SegmentRunner] | None,
                 adapters: AdapterService | None, backend: MediaAnalysisBackend | None) -> None:
        self.settings, self.store, self.objects, self.tokens = settings, store, objects, tokens
        self._runner, self._adapters, self._backend = runner, adapters, backend
        super().__init__(self.run, "media-analysis", settings.max_concurrent_media_jobs)

    def unfinished_work(self) -> list[str]:
        """Every job a stopped server left unfinished: run again from the start."""
        return [job.job_id for job in self.store.unfinished_jobs()]

    # -- operations --------------------------------------------------------------------------

    def start_media_analysis_job(self, account: str, request: MediaAnalysisRequest) -> str:
        if self._backend is None or self._runner is None:
            raise InternalServerError("Media analysis is not configured on this server")
        if request.project_version is not None:
            self._adapter_path(account, request.project_version)
        lines, _ = self._read_manifest(account, request.manifest)
        if not lines:
            raise InvalidManifestException(
                f"The manifest {request.manifest.describe()} names no image: each line must be "
                '{"source-ref": "s3://bucket/key"}')
        writable_location(self.objects, account, request.output_bucket, request.output_prefix or "")
        from engine.jobs.service import new_job_id

        job_id, created = self.store.create_job(new_job_id(), account, request, now_ms(),
                                                self.settings.max_concurrent_media_jobs)
        if created:
            self.queue_work(job_id)
        return job_id

    def get_media_analysis_job(self, account: str, job_id: str) -> MediaAnalysisRecord:
        job = self.store.get_job(account, job_id)
        if job is None:
            raise ResourceNotFoundException(f"The media analysis job {job_id} does not exist")
        return job

    def list_media_analysis_jobs(self, account: str, max_results: int, next_token: str | None
                                 ) -> tuple[list[MediaAnalysisRecord], str | None]:
        query = PageQuery(f"media-analysis:{account}", "", "")
        return self.tokens.page(self.store.list_jobs(account), query, max_results, next_token)

    # -- reading -----------------------------------------------------------------------------

    def _adapter_path(self, account: str, arn: str) -> str:
        if self._adapters is None:
            raise InternalServerError("Adapters are not configured on this server")
        return self._adapters.usable_adapter(account, arn)

    def _read_manifest(self, account: str, manifest: ObjectRef
                       ) -> tuple[list[ManifestLine], list[dict]]:
        """(usable lines, summary errors of the others); InvalidS3Object / InvalidManifest
        when the manifest as a whole cannot be used."""
        readable_object(self.objects, account, manifest)
        numbered = manifest_lines(self.objects, manifest, InvalidManifestException)
        if len(numbered) > self.settings.media_analysis_max_images:
            raise InvalidManifestException(
                f"The manifest {manifest.describe()} has {len(numbered)} lines; at most "
                f"{self.settings.media_analysis_max_images} images per job")
        lines, errors = [], []
        for number, text in numbered:
            try:
                document = json.loads(text)
            except ValueError:
                document = None
            if not isinstance(document, dict):
                errors.append(_line_error(number, None, "INVALID_JSON_LINE",
                                          f"line {number} is not a JSON object"))
                continue
            try:
                image = parse_s3_url(document.get("source-ref"), f"line {number}")
            except ServiceError as error:
                errors.append(_line_error(number, None, "INVALID_SOURCE_REF", error.message))
                continue
            lines.append(ManifestLine(number, document, image))
        return lines, errors

    # -- running -----------------------------------------------------------------------------

    def run(self, job_id: str) -> MediaAnalysisRecord | None:
        """Run one queued job to SUCCEEDED or FAILED (with FailureDetails)."""
        job = self.store.job_by_id(job_id)
        if job is None or job.status.is_terminal:
            return job
        attempts = self.store.begin_run(job_id)
        if not attempts:
            return self.store.job_by_id(job_id)
        if attempts > MAX_RUN_ATTEMPTS:
            self._fail(job_id, FailureCode.INTERNAL_ERROR,
                       f"The job was interrupted {MAX_RUN_ATTEMPTS} times (the server stopped "
                       "while it ran); start it again", None)
            return self.store.job_by_id(job_id)
        try:
            outputs = self._analyse(job)
        except RunnerStoppedError:
            log.info("media analysis job %s stops with the server; it resumes at the next start",
                     job_id)
            return self.store.job_by_id(job_id)
        except OutputWriteError as error:
            self._fail(job_id, FailureCode.INVALID_OUTPUT_CONFIG, str(error), None)
        except ServiceError as error:
            self._fail(job_id, FAILURE_CODES.get(type(error), FailureCode.INTERNAL_ERROR),
                       error.message, None)
        except Exception as error:
            log.exception("media analysis job %s failed", job_id)
            self._fail(job_id, FailureCode.INTERNAL_ERROR, describe_exception(error), None)
        else:
            self.store.finish_job(job_id, MediaJobStatus.SUCCEEDED, now_ms(), outputs)
        return self.store.job_by_id(job_id)

    def _fail(self, job_id: str, code: FailureCode, message: str,
              outputs: MediaOutputs | None) -> None:
        log.warning("media analysis job %s failed: %s %s", job_id, code.value, message)
        self.store.finish_job(job_id, MediaJobStatus.FAILED, now_ms(), outputs,
                              (code, message[:1000]))

    def _analyse(self, job: MediaAnalysisRecord) -> MediaOutputs:
        request = job.request
        labelling = self._labelling(job)
        lines, errors = self._read_manifest(job.account, request.manifest)
        total = len(lines) + len(errors)
        results: dict[int, dict] = {}
        for start in range(0, len(lines), CHUNK_IMAGES):
            chunk = lines[start : start + CHUNK_IMAGES]
            images = self._read_images(job.account, chunk, errors)
            results |= self._label_images(chunk, images, labelling, errors)
        errors.sort(key=lambda error: error["line-number"])
        summary = {"version": "1.0",
                   "statistics": {"total-json-lines": total, "valid-json-lines": len(results),
                                  "invalid-json-lines": total - len(results)},
                   "errors": errors}
        text = "".join(json.dumps(results[number]) + "\n" for number in sorted(results))
        results_ref = self._write(request, job.job_id, RESULTS_NAME, text.encode(),
                                  "application/x-ndjson")
        summary_ref = self._write(request, job.job_id, SUMMARY_NAME,
                                  json.dumps(summary, indent=1).encode(), "application/json")
        log.info("media analysis job %s: %d of %d image(s) analysed", job.job_id, len(results),
                 total)
        return MediaOutputs(results_ref, summary_ref, self.settings.model_version)

    def _labelling(self, job: MediaAnalysisRecord) -> Labelling:
        """How this job's images are scored and labelled, worked out once per run."""
        request, runner = job.request, self._runner()
        adapter_path = (self._adapter_path(job.account, request.project_version)
                        if request.project_version else None)
        min_confidence = request.min_confidence
        return Labelling(
            runner.taxonomy_for(adapter_path), runner.model_info, adapter_path,
            self.settings.default_min_confidence if min_confidence is None else min_confidence,
            request.project_version, runner.inference_actors())

    def _read_images(self, account: str, chunk: list[ManifestLine], errors: list[dict]
                     ) -> list[tuple[int, bytes]]:
        """(line number, encoded image) of each image of the chunk that can be read; the
        others go to `errors`."""
        images = []
        for line in chunk:
            try:
                images.append((line.number, read_image_object(
                    self.objects, account, line.image, self.settings.max_image_object_bytes)))
            except (InvalidS3ObjectException, ImageTooLargeException) as error:
                errors.append(_line_error(line.number, line.document["source-ref"],
                                          error.code, error.message))
        return images

    def _label_images(self, chunk: list[ManifestLine], images: list[tuple[int, bytes]],
                      labelling: Labelling, errors: list[dict]) -> dict[int, dict]:
        """Score the images on Ray Data; their result lines by line number (an image that
        does not decode goes to `errors`)."""
        by_number = {line.number: line for line in chunk}
        info = labelling.model_info
        results = {}
        for scored in self._backend.score_images(self.settings, images, tuple(info.input_size),
                                                 labelling.adapter_path, labelling.actors):
            line = by_number[scored.key]
            if scored.scores is None:
                code = ("ImageTooLargeException" if scored.too_large
                        else "InvalidImageFormatException")
                errors.append(_line_error(line.number, line.document["source-ref"], code,
                                          scored.error))
                continue
            moderation = image_moderation(scored.scores, labelling.taxonomy, info.content_types,
                                          labelling.min_confidence, self.settings.model_version,
                                          labelling.project_version)
            results[line.number] = line.document | {
                RESULT_MEMBER: self._backend.moderation_to_wire(moderation)}
        return results

    def _write(self, request: MediaAnalysisRequest, job_id: str, name: str, data: bytes,
               content_type: str) -> ObjectRef:
        prefix = request.output_prefix
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        key = f"{prefix}{job_id}/{name}"
        try:
            version = self.objects.put_bytes(request.output_bucket, key, data, content_type)
        except Exception as error:  # noqa: BLE001 - any refusal is the output config's
            raise OutputWriteError(
                f"The output location s3://{request.output_bucket}/{key} cannot be written: "
                f"{describe_exception(error)}") from None
        return ObjectRef(request.output_bucket, key, version)


def _line_error(number: int, source_ref: str | None, code: str, message: str) -> dict:
    """One entry of the manifest summary's errors (AWS's member names)."""
    error = {"line-number": number, "code": code, "message": message}
    if source_ref is not None:
        error["source-ref"] = source_ref
    return error
