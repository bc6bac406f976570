"""Plain data of media analysis jobs (StartMediaAnalysisJob: DetectModerationLabels over a
manifest of images). `api` builds the request and writes the records back
(engine/api/wire.py); nothing here knows the wire's member names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from engine.jobs.adapter_types import StoredAsJson
from engine.jobs.types import request_fingerprint
from engine.storage.base import ObjectRef


class MediaJobStatus(str, Enum):
    """QUEUED (accepted) -> IN_PROGRESS (running) -> SUCCEEDED | FAILED. A restart never leaves a
    job QUEUED or IN_PROGRESS unattended: it runs again, or fails with FailureDetails."""

    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def is_terminal(self) -> bool:
        return self in (MediaJobStatus.SUCCEEDED, MediaJobStatus.FAILED)


class FailureCode(str, Enum):
    """MediaAnalysisJobFailureDetails.Code values this service uses."""

    INTERNAL_ERROR = "INTERNAL_ERROR"
    INVALID_S3_OBJECT = "INVALID_S3_OBJECT"
    INVALID_MANIFEST = "INVALID_MANIFEST"
    INVALID_OUTPUT_CONFIG = "INVALID_OUTPUT_CONFIG"
    RESOURCE_NOT_FOUND = "RESOURCE_NOT_FOUND"
    RESOURCE_NOT_READY = "RESOURCE_NOT_READY"


@dataclass(frozen=True)
class MediaAnalysisRequest(StoredAsJson):
    """StartMediaAnalysisJob, parsed and validated against the contract."""

    REF_FIELDS: ClassVar[tuple[str, ...]] = ("manifest",)

    manifest: ObjectRef
    output_bucket: str
    output_prefix: str = ""
    min_confidence: float | None = None
    """OperationsConfig.DetectModerationLabels.MinConfidence (None: the service default)."""
    project_version: str | None = None
    """OperationsConfig.DetectModerationLabels.ProjectVersion: an adapter of the account."""
    job_name: str | None = None
    client_request_token: str | None = None
    kms_key_id: str | None = None

    def fingerprint(self) -> str:
        return request_fingerprint(self)


@dataclass(frozen=True)
class MediaOutputs(StoredAsJson):
    """What a finished job wrote: the results manifest and the manifest summary."""

    REF_FIELDS: ClassVar[tuple[str, ...]] = ("results", "summary")

    results: ObjectRef | None
    summary: ObjectRef
    model_version: str


@dataclass(frozen=True)
class MediaAnalysisRecord:
    """One media analysis job as stored."""

    job_id: str
    account: str
    request: MediaAnalysisRequest
    status: MediaJobStatus
    created_ms: int
    completed_ms: int | None = None
    failure_code: FailureCode | None = None
    failure_message: str | None = None
    outputs: MediaOutputs | None = None
    """The results manifest and summary; also on a FAILED job when a summary was written."""
    attempts: int = 0
    """Runs started (a restart in flight starts another, up to a limit)."""
