"""Plain data crossing the jobs boundary: parsed requests, job records, pages, and job states.

`api` builds `StartRequest` / `GetRequest` from the wire and turns `ResultPage` /
`ImageModeration` back into it (engine/api/wire.py); `jobs` never sees JSON shapes or HTTP.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import Enum

from engine.results.types import ContentType, Detection
from engine.storage.base import ObjectRef
from engine.video.types import VideoMetadata


class JobState(str, Enum):
    """Internal states; the wire shows SUBMITTED and RUNNING both as IN_PROGRESS."""

    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def wire_status(self) -> str:
        return "IN_PROGRESS" if self in (JobState.SUBMITTED, JobState.RUNNING) else self.value

    @property
    def is_terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED)


ALLOWED_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.SUBMITTED: frozenset({JobState.RUNNING, JobState.FAILED}),
    JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
}
ACTIVE_STATES = (JobState.SUBMITTED, JobState.RUNNING)


class IllegalTransitionError(RuntimeError):
    """A bug: code tried to move a job along an edge ALLOWED_TRANSITIONS does not have."""


def check_transition(current: JobState, target: JobState) -> None:
    if target not in ALLOWED_TRANSITIONS[current]:
        raise IllegalTransitionError(
            f"job state cannot move from {current.value} to {target.value}"
        )


@dataclass(frozen=True)
class NotificationChannel:
    """Where a job's completion message is published: its SNS topic (or the webhook configured
    for that ARN), and the role the real service would publish with."""

    sns_topic_arn: str
    role_arn: str


def request_fingerprint(request, omit_when_none: tuple[str, ...] = ()) -> str:
    """Canonical text of every parameter of a request dataclass but its ClientRequestToken:
    what a retry with the same token must repeat exactly (idempotency). Fields named in
    `omit_when_none` are left out while None, so adding an optional parameter keeps the
    fingerprints of requests that do not use it."""
    document = asdict(request)
    document.pop("client_request_token")
    for name in omit_when_none:
        if document[name] is None:
            document.pop(name)
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class StartRequest:
    """StartContentModeration, parsed and validated."""

    video: ObjectRef
    min_confidence: float
    client_request_token: str | None = None
    notification_channel: NotificationChannel | None = None
    job_tag: str | None = None
    adapter_arn: str | None = None
    """Not a Rekognition parameter: the account's video adapter at Start (engine/jobs/adapters.py)."""

    def fingerprint(self) -> str:
        # adapter_arn left out when None, as before adapters existed: old tokens still match
        return request_fingerprint(self, omit_when_none=("adapter_arn",))


@dataclass(frozen=True)
class GetRequest:
    """GetContentModeration, parsed and validated (MaxResults already capped)."""

    job_id: str
    max_results: int = 1000
    next_token: str | None = None
    sort_by: str = "TIMESTAMP"
    aggregate_by: str = "TIMESTAMPS"


@dataclass(frozen=True)
class JobRecord:
    """One job as stored."""

    job_id: str
    account: str
    video: ObjectRef
    min_confidence: float
    state: JobState
    created_ms: int
    model_version: str
    decode_mode: str = "accurate"
    """The decode mode chosen when the job was accepted; a resumed job keeps it even if the
    server's setting changed meanwhile, so its segments are all decoded one way."""
    client_request_token: str | None = None
    notification_channel: NotificationChannel | None = None
    job_tag: str | None = None
    status_message: str | None = None
    metadata: VideoMetadata | None = None
    finished_ms: int | None = None
    adapter_arn: str | None = None
    """The Custom Moderation adapter the job's frames are scored with, fixed at Start."""


@dataclass(frozen=True)
class ResultPage:
    """One GetContentModeration page: the job, this page's detections and the next token."""

    job: JobRecord
    detections: list[Detection]
    next_token: str | None
    sort_by: str
    aggregate_by: str


@dataclass(frozen=True)
class ImageModeration:
    """DetectModerationLabels' answer before it is put on the wire."""

    labels: list[Detection]
    """One entry per detected label and per ancestor, most confident first."""
    model_version: str
    content_types: tuple[ContentType, ...] = ()
    """The image's content types (Illustrated...), most confident first."""
    project_version: str | None = None
    """The adapter (project version ARN) merged into the labels, echoed on the wire."""
