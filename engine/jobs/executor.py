"""Runs accepted jobs in background threads of the server process and resumes them after a restart.

A job that raises anything becomes FAILED with a StatusMessage a person can read; it is never an
HTTP error, and one job's failure never touches another. Threads are daemons: stopping the
server (or killing it) leaves unfinished jobs RUNNING in the store, and the next start resumes
them. While stopping, a job interrupted by the runner's shutdown is left RUNNING, never FAILED,
and queued jobs are not started. One executor never runs the same job in two threads at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from engine import logs
from engine.cluster import describe_exception, failure_message, failure_metric_type
from engine.config import EngineSettings
from engine.jobs.pipeline import SegmentRunner, process_job
from engine.jobs.store import JobStore, now_ms
from engine.jobs.types import JobRecord, JobState
from engine.jobs.workers import WorkerPool
from engine.metrics import EngineMetrics
from engine.notify import CompletionNotifier, completion_message
from engine.storage.base import ObjectStore

log = logging.getLogger(__name__)

RunnerFactory = Callable[[], SegmentRunner]


class JobExecutor:
    """A queue of job ids served by `worker_count` daemon threads sharing one lazily built runner."""

    def __init__(
        self,
        settings: EngineSettings,
        store: JobStore,
        objects: ObjectStore,
        runner_factory: RunnerFactory,
        notifier: CompletionNotifier | None,
        worker_count: int | None = None,
        metrics: EngineMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.store = store
        self.objects = objects
        self._runner_factory = runner_factory
        self._runner: SegmentRunner | None = None
        self._runner_lock = threading.Lock()
        self.notifier = notifier
        self._workers = WorkerPool(self._handle, "job-worker")
        self._worker_count = worker_count or max(1, settings.max_concurrent_jobs)
        self._stopping = threading.Event()
        self._claimed: set[str] = set()
        self._claims_lock = threading.Lock()

    def start(self) -> None:
        """Start the workers, then re-queue unfinished jobs and undelivered notifications."""
        self._workers.start(self._worker_count)
        for job_id in self.store.jobs_pending_notification():
            self._workers.put(("notify", job_id))
        for job_id in self.store.active_job_ids():
            log.info("resuming job %s", job_id)
            self.submit(job_id)

    def submit(self, job_id: str) -> None:
        self._workers.put(("run", job_id))

    def stop(self) -> None:
        """Stop taking jobs, interrupt running ones (they stay RUNNING and resume at the next
        start), and shut the runner down, which stops the Ray it started."""
        self._stopping.set()
        self._workers.stop()
        with self._runner_lock:
            if self._runner is not None:
                try:
                    self._runner.shutdown()
                finally:
                    self._runner = None

    def workers_alive(self) -> tuple[int, int]:
        """(alive, expected) job threads; expected is 0 before start() and after stop()."""
        if self._stopping.is_set():
            return 0, 0
        return self._workers.alive()

    def inference_stats(self, timeout_s: float) -> list[dict] | None:
        """The runner's inference-actor figures for metrics; None while no runner exists (a
        metrics scrape must never be what builds the runner and starts Ray)."""
        stats = getattr(self._runner, "inference_stats", None)
        return None if stats is None else stats(timeout_s)

    def wait_idle(self, timeout_s: float) -> bool:
        """For tests and the demo: block until no job is queued or running."""
        return self._workers.wait_idle(timeout_s)

    def _handle(self, item) -> None:
        kind, job_id = item
        if kind == "run" and self._stopping.is_set():
            log.info("not starting job %s: the server is stopping", job_id)
        elif kind == "run":
            self.run_job(job_id)
        else:
            with logs.bound(logs.job_id, job_id):
                self.notify(job_id)

    def runner(self) -> SegmentRunner:
        """The shared runner, built and connected once under a lock.

        Touching `taxonomy` makes the runner connect to Ray and build its inference pool here,
        serialised, rather than racing from several job threads at their first probe.
        """
        with self._runner_lock:
            if self._stopping.is_set():
                raise ExecutorStoppedError("the server is stopping")
            if self._runner is None:
                runner = self._runner_factory()
                runner.taxonomy  # noqa: B018 - connect now, once
                self._runner = runner
            return self._runner

    def run_job(self, job_id: str) -> JobRecord | None:
        """Drive one job to a terminal state, then publish its completion message."""
        with self._claims_lock:
            if job_id in self._claimed:
                log.info("job %s is already running here", job_id)
                return self.store.get_job(job_id)
            self._claimed.add(job_id)
        try:
            with logs.bound(logs.job_id, job_id):
                return self._run_claimed_job(job_id)
        finally:
            with self._claims_lock:
                self._claimed.discard(job_id)

    def _run_claimed_job(self, job_id: str) -> JobRecord | None:
        job = self.store.get_job(job_id)
        if job is None or job.state.is_terminal:
            return job
        if self.metrics is not None:
            self.metrics.job_started()
        try:
            job = process_job(
                job, self.store, self.objects, self.runner(), self.settings, self.metrics
            )
        except Exception as error:  # noqa: BLE001 - any failure inside a job becomes FAILED
            if self._stopping.is_set():
                log.info("job %s interrupted by shutdown (%s); it resumes at the next start",
                         job_id, describe_exception(error))
                return self.store.get_job(job_id)
            job = self.store.fail_job(
                job_id, failure_message(error), self.settings.result_retention_s
            )
            log.warning("job %s failed: %s", job_id, job.status_message)
            if self.metrics is not None:
                self.metrics.job_failed(failure_metric_type(error))
        else:
            if self.metrics is not None and job.state is JobState.SUCCEEDED:
                self.metrics.job_succeeded()
        self.notify(job_id)
        return job

    def notify(self, job_id: str) -> None:
        job = self.store.get_job(job_id)
        if job is None or job.notification_channel is None or not job.state.is_terminal:
            return
        if self.notifier is None:
            return
        message = completion_message(
            job.job_id,
            job.state.value,
            job.video.bucket,
            job.video.key,
            job.finished_ms or now_ms(),
            job.job_tag,
        )

        def record(target: str, attempt: int, succeeded: bool, detail: str) -> None:
            self.store.record_notification_attempt(job_id, target, attempt, succeeded, detail)

        self.notifier.deliver(job.notification_channel.sns_topic_arn, message, record)
        self.store.mark_notified(job_id)


class ExecutorStoppedError(RuntimeError):
    """A job asked for the runner after stop(); it stays RUNNING for the next start."""
