"""Job lifecycle and durable state: idempotency, limits, status, stored results, resume.

Knows nothing about HTTP or the wire format; talks to the cluster through the runner interface
(engine/jobs/pipeline.py: SegmentRunner) and to objects through engine.storage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.config import EngineSettings
from engine.jobs.adapter_store import AdapterStore
from engine.jobs.adapters import AdapterService
from engine.jobs.executor import JobExecutor, RunnerFactory
from engine.jobs.media_analysis import MediaAnalysisBackend, MediaAnalysisService
from engine.jobs.media_store import MediaAnalysisStore
from engine.jobs.service import ModerationService
from engine.jobs.store import JobStore
from engine.jobs.tokens import PageTokenCodec, load_or_create_secret
from engine.jobs.types import (
    GetRequest,
    JobRecord,
    JobState,
    NotificationChannel,
    ResultPage,
    StartRequest,
)
from engine.metrics import EngineMetrics
from engine.notify import CompletionNotifier, NotificationSigner, NotifySettings
from engine.storage import AccessPolicy, ObjectStore, open_object_store

DATABASE_FILE = "jobs.sqlite3"
TOKEN_SECRET_FILE = "page_token.key"


@dataclass
class JobSystem:
    """The wired-up jobs layer of one server process."""

    service: ModerationService
    executor: JobExecutor
    store: JobStore
    adapters: AdapterService | None = None
    media: MediaAnalysisService | None = None

    def start(self) -> None:
        self.executor.start()
        for part in (self.adapters, self.media):
            if part is not None:
                part.start()

    def stop(self) -> None:
        for part in (self.media, self.adapters):
            if part is not None:
                part.stop()
        self.executor.stop()


def open_job_system(
    settings: EngineSettings,
    runner_factory: RunnerFactory,
    objects: ObjectStore | None = None,
    notify_settings: NotifySettings | None = None,
    worker_count: int | None = None,
    metrics: EngineMetrics | None = None,
    signer: NotificationSigner | None = None,
    media_backend: MediaAnalysisBackend | None = None,
) -> JobSystem:
    """Open the store under settings.data_dir and wire service, executor and notifier together.

    `objects` is the object store with its access policy (engine/storage/access.py); None opens
    the configured one with no access rules enforced (an in-process job system, run by the
    operator: tests, benchmarks). `media_backend` (Ray Data scoring and the wire writer, from
    engine/server.py) enables media analysis jobs; without it StartMediaAnalysisJob answers
    InternalServerError.

    `metrics` (one per server) is counted into by the executor and reads jobs by state from the
    store and the inference pool's figures from the executor's runner at scrape time. `signer`
    signs webhook deliveries (None: unsigned)."""
    store = JobStore(settings.data_dir / DATABASE_FILE)
    # A server passes the store it built with its callers' access rules (engine/server.py);
    # a job system opened in-process without one serves its operator, so none is enforced.
    objects = objects or open_object_store(settings, AccessPolicy(enforced=False))
    notifier = CompletionNotifier(
        notify_settings or NotifySettings.from_engine_settings(settings), signer=signer)
    executor = JobExecutor(
        settings, store, objects, runner_factory, notifier, worker_count=worker_count,
        metrics=metrics,
    )
    if metrics is not None:
        metrics.watch_jobs(store.count_jobs_by_state)
        metrics.watch_inference(executor.inference_stats)
    tokens = PageTokenCodec(
        load_or_create_secret(settings.data_dir / TOKEN_SECRET_FILE),
        lifetime_s=float(settings.page_token_lifetime_s),
    )
    adapters = AdapterService(settings, AdapterStore(settings.data_dir / DATABASE_FILE), objects,
                              tokens, runner=executor.runner)
    media = MediaAnalysisService(
        settings, MediaAnalysisStore(settings.data_dir / DATABASE_FILE), objects, tokens,
        runner=executor.runner, adapters=adapters, backend=media_backend)
    service = ModerationService(
        settings, store, objects, tokens, submit_job=executor.submit,
        shared_runner=executor.runner, adapters=adapters, media=media,
    )
    return JobSystem(service=service, executor=executor, store=store, adapters=adapters,
                     media=media)


def default_runner_factory(settings: EngineSettings) -> RunnerFactory:
    """Build the real cluster runner on first use (starting Ray is slow and may not be needed)."""

    def build() -> Any:
        from engine.cluster import ClusterRunner

        return ClusterRunner(settings)

    return build


__all__ = [
    "AdapterService",
    "GetRequest",
    "JobExecutor",
    "JobRecord",
    "JobState",
    "JobStore",
    "JobSystem",
    "MediaAnalysisBackend",
    "MediaAnalysisService",
    "ModerationService",
    "NotificationChannel",
    "ResultPage",
    "StartRequest",
    "default_runner_factory",
    "open_job_system",
]
