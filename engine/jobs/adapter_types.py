"""Plain data of Custom Moderation adapters: projects, project versions (adapters) and the
parsed CreateProjectVersion request. `api` builds the requests and writes the records back
(engine/api/wire.py); nothing here knows the wire's member names.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import ClassVar

from engine.storage.base import ObjectRef

CONTENT_MODERATION = "CONTENT_MODERATION"


class VersionStatus(str, Enum):
    """The states an adapter moves through; TRAINING_IN_PROGRESS never outlives a restart
    unresolved (it resumes, or becomes TRAINING_FAILED with a message)."""

    TRAINING_IN_PROGRESS = "TRAINING_IN_PROGRESS"
    TRAINING_COMPLETED = "TRAINING_COMPLETED"
    TRAINING_FAILED = "TRAINING_FAILED"


class StoredAsJson:
    """A dataclass kept in one JSON text column of the store; its ObjectRef fields (named in
    REF_FIELDS, or REF_TUPLE_FIELDS for tuples of them) come back as ObjectRefs."""

    REF_FIELDS: ClassVar[tuple[str, ...]] = ()
    REF_TUPLE_FIELDS: ClassVar[tuple[str, ...]] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str):
        document = json.loads(text)
        for name in cls.REF_TUPLE_FIELDS:
            document[name] = tuple(ObjectRef(**ref) for ref in document[name])
        for name in cls.REF_FIELDS:
            if document.get(name) is not None:
                document[name] = ObjectRef(**document[name])
        return cls(**document)


@dataclass(frozen=True)
class ProjectRecord:
    arn: str
    account: str
    name: str
    feature: str
    auto_update: str
    created_ms: int
    status: str = "CREATED"


@dataclass(frozen=True)
class VersionRequest(StoredAsJson):
    """CreateProjectVersion, parsed and validated against the contract (not yet the data)."""

    REF_TUPLE_FIELDS: ClassVar[tuple[str, ...]] = ("training_manifests", "testing_manifests")

    project_arn: str
    version_name: str
    output_bucket: str
    output_prefix: str = ""
    training_manifests: tuple[ObjectRef, ...] = ()
    testing_manifests: tuple[ObjectRef, ...] = ()
    auto_create_testing: bool = False
    confidence_threshold: float | None = None
    description: str | None = None
    tags: dict = field(default_factory=dict)
    kms_key_id: str | None = None


@dataclass(frozen=True)
class Evaluation(StoredAsJson):
    """What a finished training measured on its testing split, and where it wrote it."""

    REF_FIELDS: ClassVar[tuple[str, ...]] = ("summary", "testing_manifest", "training_manifest")

    f1: float
    summary: ObjectRef
    testing_manifest: ObjectRef | None = None
    """The testing split written to the output location (when TestingData.AutoCreate)."""
    training_manifest: ObjectRef | None = None
    """The training split actually trained on (AutoCreate removes the testing share)."""


@dataclass(frozen=True)
class VersionRecord:
    """One project version (an adapter) as stored."""

    arn: str
    account: str
    project_arn: str
    name: str
    """VersionName: unique within its project."""
    status: VersionStatus
    created_ms: int
    """CreationTimestamp, epoch milliseconds."""
    request: VersionRequest
    """The CreateProjectVersion request as accepted, replayed when a training restarts."""
    confidence_threshold: float
    """FeatureConfig.ContentModeration.ConfidenceThreshold, or DEFAULT_CONFIDENCE_THRESHOLD."""
    status_message: str | None = None
    """Why the training failed (TRAINING_FAILED only)."""
    training_end_ms: int | None = None
    evaluation: Evaluation | None = None
    base_model_version: str = ""
    """The ModerationModelVersion whose frozen model the adapter was trained on."""
    attempts: int = 0
    """Trainings started (a restart in flight starts another, up to a limit)."""


@dataclass(frozen=True)
class ManifestEntry:
    """One line of a Ground Truth manifest: an image and the moderation labels it shows."""

    manifest: ObjectRef
    line: int
    """1-based line of the manifest, for the error messages that point at it."""
    image: ObjectRef
    labels: tuple[str, ...]
    """The annotation's moderation label names; empty for a safe image."""
