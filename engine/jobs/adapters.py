"""Custom Moderation adapters' behaviour: projects, versions, training, and resolving an
adapter for DetectModerationLabels and video jobs.

CreateProjectVersion checks everything it can before it records anything (the manifests, each
line, each label against the model's taxonomy, each image's existence and format, the number of
examples), so each mistake answers its typed error at once; it then records the version as
TRAINING_IN_PROGRESS and queues its training. Trainings run in this process's training threads,
which hand the images to the cluster runner (`train_adapter`, a Ray task embedding them through
the shared pool); the adapter file lands in the data dir and the evaluation summary in the
version's output location. At start, a version left TRAINING_IN_PROGRESS by a stopped or
killed server trains again, up to MAX_TRAINING_ATTEMPTS starts; then it is TRAINING_FAILED
with a message. Everything is per account: another account's ARN is not found.
Knows nothing about HTTP or the wire.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from engine.cluster import AdapterExample, AdapterTrainingRequest, adapter_file, describe_exception
from engine.config import EngineSettings
from engine.errors import (
    InternalServerError,
    InvalidParameterException,
    InvalidS3ObjectException,
    ResourceNotFoundException,
    ResourceNotReadyException,
)
from engine.jobs import manifests
from engine.jobs.adapter_store import AdapterStore
from engine.jobs.adapter_types import (
    CONTENT_MODERATION,
    Evaluation,
    ManifestEntry,
    ProjectRecord,
    VersionRecord,
    VersionRequest,
    VersionStatus,
)
from engine.jobs.pipeline import SegmentRunner
from engine.jobs.store import now_ms
from engine.jobs.tokens import PageQuery, PageTokenCodec
from engine.jobs.workers import QueuedWorkService
from engine.storage.access import readable_object, writable_location
from engine.storage.base import ObjectRef, ObjectStore

log = logging.getLogger(__name__)

DEFAULT_CONFIDENCE_THRESHOLD = 50.0
MAX_TRAINING_ATTEMPTS = 3


def usable_version(store: AdapterStore, account: str, arn: str) -> VersionRecord:
    """A finished version of this account; ResourceNotFound / ResourceNotReady otherwise."""
    version = store.get_version(account, arn)
    if version is None:
        raise ResourceNotFoundException(f"The project version {arn} does not exist")
    if version.status is VersionStatus.TRAINING_IN_PROGRESS:
        raise ResourceNotReadyException(f"The project version {arn} is still training")
    if version.status is not VersionStatus.TRAINING_COMPLETED:
        raise ResourceNotReadyException(
            f"The project version {arn} cannot be used: its training failed "
            f"({version.status_message})")
    return version


def use_for_video(store: AdapterStore, account: str, arn: str | None) -> None:
    """Beyond Rekognition: the adapter the account's future StartContentModeration jobs use
    (None: none). Each job records the one in force when it is accepted and keeps it."""
    if arn is not None:
        usable_version(store, account, arn)
    store.set_video_adapter(account, arn)


def arn_account(account: str) -> str:
    """The 12-digit account id in ARNs: the account itself when it is one, else a stable
    number derived from its name (keys without an account id are accounts of their own)."""
    if len(account) == 12 and account.isdigit():
        return account
    return f"{int(hashlib.sha256(account.encode()).hexdigest(), 16) % 10**12:012d}"


class AdapterService(QueuedWorkService):
    """Projects and versions of one store; `runner()` is the cluster runner the jobs use."""

    def __init__(self, settings: EngineSettings, store: AdapterStore, objects: ObjectStore,
                 tokens: PageTokenCodec, runner: Callable[[], SegmentRunner] | None) -> None:
        self.settings, self.store, self.objects, self.tokens = settings, store, objects, tokens
        self._runner = runner
        super().__init__(self.train, "adapter-training", settings.max_concurrent_trainings)

    def unfinished_work(self) -> list[str]:
        """Every version a stopped server left training: trained again from its request."""
        return [version.arn for version in self.store.versions_in_progress()]

    # -- projects ----------------------------------------------------------------------------

    def create_project(self, account: str, name: str, feature: str | None,
                       auto_update: str | None) -> ProjectRecord:
        if feature != CONTENT_MODERATION:
            raise InvalidParameterException(
                f"Feature {feature or 'CUSTOM_LABELS (the default)'} is not offered: this "
                f"service trains {CONTENT_MODERATION} adapters only; pass "
                f"Feature={CONTENT_MODERATION}")
        created = now_ms()
        project = ProjectRecord(
            f"arn:aws:rekognition:{self.settings.s3_region}:{arn_account(account)}:project/"
            f"{name}/{created}", account, name, feature, auto_update or "DISABLED", created)
        self.store.create_project(project)
        return project

    def describe_projects(self, account: str, names: list[str] | None,
                          features: list[str] | None, max_results: int,
                          next_token: str | None) -> tuple[list[ProjectRecord], str | None]:
        # AWS: without Features, only CUSTOM_LABELS projects are described.
        wanted = set(features or ["CUSTOM_LABELS"])
        projects = [project for project in self.store.list_projects(account)
                    if project.feature in wanted and (not names or project.name in names)]
        query = PageQuery(f"projects:{account}", ",".join(sorted(wanted)), ",".join(names or []))
        return self.tokens.page(projects, query, max_results, next_token)

    def delete_project(self, account: str, arn: str) -> str:
        if not self.store.delete_project(account, arn):
            raise ResourceNotFoundException(f"The project {arn} does not exist")
        return "DELETING"

    def _project(self, account: str, arn: str) -> ProjectRecord:
        project = self.store.get_project(account, arn)
        if project is None:
            raise ResourceNotFoundException(f"The project {arn} does not exist")
        return project

    # -- versions ----------------------------------------------------------------------------

    def create_project_version(self, account: str, request: VersionRequest) -> str:
        project = self._project(account, request.project_arn)
        if not request.training_manifests:
            raise InvalidParameterException(
                "TrainingData.Assets must name at least one GroundTruthManifest")
        if request.testing_manifests and request.auto_create_testing:
            raise InvalidParameterException(
                "TestingData takes either Assets or AutoCreate=true, not both")
        if not request.testing_manifests and not request.auto_create_testing:
            raise InvalidParameterException(
                "TestingData needs Assets or AutoCreate=true (to split the training data)")
        writable_location(self.objects, account, request.output_bucket, request.output_prefix or "")
        training, testing = self._checked_data(account, request)
        created = now_ms()
        version = VersionRecord(
            arn=f"arn:aws:rekognition:{self.settings.s3_region}:{arn_account(account)}:project/"
                f"{project.name}/version/{request.version_name}/{created}",
            account=account, project_arn=project.arn, name=request.version_name,
            status=VersionStatus.TRAINING_IN_PROGRESS, created_ms=created, request=request,
            confidence_threshold=DEFAULT_CONFIDENCE_THRESHOLD
            if request.confidence_threshold is None else request.confidence_threshold,
            base_model_version=self.settings.model_version)
        self.store.create_version(version, self.settings.max_concurrent_trainings)
        log.info("training %s on %d training and %d testing images", version.arn,
                 len(training), len(testing))
        self.queue_work(version.arn)
        return version.arn

    def _checked_data(self, account: str, request: VersionRequest
                      ) -> tuple[list[ManifestEntry], list[ManifestEntry]]:
        """Every manifest and image the account may read (checked before any is read), the
        labels known, enough examples; the (training, testing) entries."""
        training = [entry for ref in request.training_manifests
                    for entry in self._read_manifest(account, ref)]
        testing = [entry for ref in request.testing_manifests
                   for entry in self._read_manifest(account, ref)]
        if len(training) + len(testing) > self.settings.adapter_max_images:
            raise InvalidParameterException(
                f"The manifests list {len(training) + len(testing)} images; at most "
                f"{self.settings.adapter_max_images}")
        taxonomy = self._shared_runner().adaptable_taxonomy
        manifests.check_labels(training + testing, set(taxonomy.names()))
        for entry in training + testing:
            self._check_readable(account, entry.image,
                                 f"manifest {entry.manifest.describe()} line {entry.line}: the image")
        manifests.check_images(self.objects, training + testing,
                               self.settings.max_image_object_bytes)
        if request.auto_create_testing:
            training, testing = manifests.split_for_testing(
                training, self.settings.adapter_testing_share)
        labels = sorted({name for entry in training for name in entry.labels})
        if not labels:
            raise InvalidParameterException(
                "Too few examples: no training image shows a moderation label")
        manifests.check_counts(labels, training, testing, self.settings.adapter_min_examples)
        return training, testing

    def _read_manifest(self, account: str, ref: ObjectRef) -> list[ManifestEntry]:
        self._check_readable(account, ref, "The manifest")
        return manifests.read_manifest(self.objects, ref)

    def _check_readable(self, account: str, ref: ObjectRef, what: str) -> None:
        """The access gate, its refusal said as CreateProjectVersion says a data problem."""
        try:
            readable_object(self.objects, account, ref)
        except InvalidS3ObjectException as error:
            raise InvalidParameterException(
                f"{what} {ref.describe()} cannot be read: {error.message}") from None

    def describe_project_versions(self, account: str, project_arn: str,
                                  names: list[str] | None, max_results: int,
                                  next_token: str | None
                                  ) -> tuple[list[VersionRecord], str | None]:
        self._project(account, project_arn)
        versions = [version for version in self.store.list_versions(account, project_arn)
                    if not names or version.name in names]
        query = PageQuery(f"versions:{project_arn}", "", ",".join(names or []))
        return self.tokens.page(versions, query, max_results, next_token)

    def delete_project_version(self, account: str, arn: str) -> str:
        if not self.store.delete_version(account, arn):
            raise ResourceNotFoundException(f"The project version {arn} does not exist")
        self.adapter_file(arn).unlink(missing_ok=True)
        return "DELETING"

    # -- using an adapter ----------------------------------------------------------------------

    def adapter_file(self, arn: str) -> Path:
        return adapter_file(self.settings.data_dir, arn)

    def usable_adapter(self, account: str, arn: str) -> str:
        """The adapter file of a finished version of this account (for the inference actors)."""
        usable_version(self.store, account, arn)
        return str(self.adapter_file(arn))

    def use_for_video(self, account: str, arn: str | None) -> None:
        """Make `arn` the adapter of the account's future video jobs (None: no adapter)."""
        use_for_video(self.store, account, arn)

    def video_adapter(self, account: str) -> str | None:
        return self.store.video_adapter(account)

    # -- training ------------------------------------------------------------------------------

    def _shared_runner(self) -> SegmentRunner:
        if self._runner is None:
            raise InternalServerError("Adapters are not configured on this server")
        return self._runner()

    def train(self, arn: str) -> VersionRecord | None:
        """Train one version to TRAINING_COMPLETED or TRAINING_FAILED (with a message)."""
        version = self.store.version_by_arn(arn)
        if version is None or version.status is not VersionStatus.TRAINING_IN_PROGRESS:
            return version
        attempts = self.store.count_attempt(arn)
        if attempts > MAX_TRAINING_ATTEMPTS:
            self._fail(arn, f"The training was interrupted {MAX_TRAINING_ATTEMPTS} times (the "
                            "server stopped while it ran); create the version again")
            return self.store.version_by_arn(arn)
        try:
            evaluation = self._run_training(version)
        except Exception as error:  # noqa: BLE001 - any failure becomes TRAINING_FAILED
            message = error.message if hasattr(error, "message") else describe_exception(error)
            log.warning("training of %s failed: %s", arn, message)
            self._fail(arn, f"The training failed: {message}")
        else:
            self.store.finish_version(arn, VersionStatus.TRAINING_COMPLETED,
                                      "The model is ready to use", evaluation, now_ms())
        return self.store.version_by_arn(arn)

    def _fail(self, arn: str, message: str) -> None:
        self.store.finish_version(arn, VersionStatus.TRAINING_FAILED, message[:1000], None,
                                  now_ms())

    def _run_training(self, version: VersionRecord) -> Evaluation:
        request = version.request
        training, testing = self._checked_data(version.account, request)
        labels = sorted({name for entry in training for name in entry.labels})
        runner = self._shared_runner()
        taxonomy = runner.adaptable_taxonomy
        adapted = tuple((taxonomy.find(name).name, taxonomy.parent_name(taxonomy.find(name)))
                        for name in labels)
        examples = tuple(
            AdapterExample(entry.image.describe(), self.objects.get_bytes(entry.image),
                           entry.labels, testing=is_testing)
            for entries, is_testing in ((training, False), (testing, True)) for entry in entries)
        result = runner.train_adapter(
            AdapterTrainingRequest(adapted, examples, version.confidence_threshold))
        path = self.adapter_file(version.arn)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(result.adapter_file)
        os.replace(temporary, path)
        return self._write_outputs(version, result, training, testing)

    def _write_outputs(self, version: VersionRecord, result, training: list[ManifestEntry],
                       testing: list[ManifestEntry]) -> Evaluation:
        request = version.request
        prefix = request.output_prefix
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        prefix += f"{version.name}/"
        summary = {
            "version": version.arn,
            "confidence_threshold": version.confidence_threshold,
            "f1": result.f1,
            "training_images": result.training_images,
            "training_embeddings": result.training_embeddings,
            "testing_images": len(testing),
            "labels": [{"name": label.name, "f1": label.f1,
                        "true_positives": label.true_positives,
                        "false_positives": label.false_positives,
                        "false_negatives": label.false_negatives,
                        "true_negatives": label.true_negatives} for label in result.labels],
            "testing_confidences": [{"source-ref": source, "confidences": dict(
                zip([label.name for label in result.labels], confidences))}
                for source, confidences in result.testing_confidences],
        }
        bucket = request.output_bucket
        summary_key = f"{prefix}evaluation-summary.json"
        version_id = self.objects.put_bytes(bucket, summary_key, json.dumps(summary, indent=1).encode())
        testing_ref = training_ref = None
        if request.auto_create_testing:
            key = f"{prefix}testing.manifest"
            testing_ref = ObjectRef(bucket, key, self.objects.put_bytes(
                bucket, key, manifests.manifest_text(testing), "application/x-ndjson"))
            key = f"{prefix}training.manifest"
            training_ref = ObjectRef(bucket, key, self.objects.put_bytes(
                bucket, key, manifests.manifest_text(training), "application/x-ndjson"))
        return Evaluation(result.f1, ObjectRef(bucket, summary_key, version_id), testing_ref,
                          training_ref)
