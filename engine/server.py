"""Process entry points the CLI wires up: `serve` (uvicorn) and `put_object` (store a video).

This is where the layers meet: settings -> object store + job system (+ the real cluster runner,
built lazily on the first job) -> ASGI app -> uvicorn.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from engine.api import build_app
from engine.api.security import open_api_security
from engine.api.settings import ApiSettings
from engine.api.wire import image_moderation_to_wire
from engine.config import EngineSettings
from engine.jobs import JobSystem, MediaAnalysisBackend, default_runner_factory, open_job_system
from engine.jobs.executor import RunnerFactory
from engine.jobs.health import check_health
from engine.logs import configure_logging
from engine.metrics import EngineMetrics
from engine.notify import NotifySettings
from engine.report import JobReportBuilder
from engine.storage import open_object_store

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def score_images(*args, **kwargs):
    """Media analysis jobs' images on Ray Data (engine/batch/images.py), imported on first use
    so that starting the server never imports Ray Data."""
    from engine.batch.images import score_images as score

    return score(*args, **kwargs)


def build_server_app(
    settings: EngineSettings,
    runner_factory: RunnerFactory | None = None,
    notify_settings: NotifySettings | None = None,
    api_settings: ApiSettings | None = None,
    worker_count: int | None = None,
) -> tuple[Starlette, JobSystem]:
    """The app and its job system; the job system starts (and resumes jobs) with the app.

    `worker_count` bounds the job threads (default: one per allowed concurrent job).

    Authentication and rate limits come from `api_settings` (default: read from `settings`);
    `app.state.credentials_file` is the generated shared-credentials file for clients;
    `app.state.metrics` the server's own metrics registry (GET /metrics).
    """
    api_settings = api_settings or ApiSettings.from_engine_settings(settings)
    security = open_api_security(api_settings, settings.data_dir)
    metrics = EngineMetrics.for_settings(settings)
    jobs = open_job_system(
        settings,
        runner_factory or default_runner_factory(settings),
        notify_settings=notify_settings,
        worker_count=worker_count,
        metrics=metrics,
        media_backend=MediaAnalysisBackend(score_images, image_moderation_to_wire),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app):
        jobs.start()
        try:
            yield
        finally:
            jobs.stop()

    app = build_app(
        jobs.service,
        authenticator=security.authenticator,
        default_min_confidence=settings.default_min_confidence,
        lifespan=lifespan,
        rate_limiter=security.rate_limiter,
        max_body_bytes=security.max_body_bytes,
        metrics=metrics,
        health_check=lambda: check_health(jobs.store, jobs.executor),
        metrics_auth_enabled=settings.metrics_auth_enabled,
        report_builder=JobReportBuilder(settings, jobs.store, jobs.service.objects),
    )
    app.state.metrics = metrics
    app.state.credentials_file = security.credentials_file
    app.state.auth_enabled = api_settings.auth_enabled
    return app, jobs


def serve(
    settings: EngineSettings, host: str | None = None, port: int | None = None,
    runner_factory: RunnerFactory | None = None, notify_settings: NotifySettings | None = None,
) -> None:
    """Run the API until interrupted; unfinished jobs resume at the next start."""
    configure_logging(settings.log_format, logging.INFO)
    app, _ = build_server_app(settings, runner_factory, notify_settings)
    host = host or settings.host
    port = settings.port if port is None else port
    if not app.state.auth_enabled and host not in LOOPBACK_HOSTS:
        raise SystemExit(
            f"modengine: refusing to serve on {host} with authentication disabled "
            "(api_auth_enabled=false is for local development on 127.0.0.1 only)"
        )
    log.info(
        "serving the Rekognition-compatible API on http://%s:%d (data in %s)",
        host,
        port,
        settings.data_dir,
    )
    # Printed, not logged: the CLI's default log level would hide it, and users need it.
    print(
        "modengine: API credentials (profile [default]) are in "
        f"{app.state.credentials_file}; for boto3: "
        f"export AWS_SHARED_CREDENTIALS_FILE={app.state.credentials_file}",
        file=sys.stderr,
        flush=True,
    )
    # log_config=None: uvicorn's own warnings go through our handler (and format), not its own.
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, log_config=None)


def put_object(
    settings: EngineSettings, local_file: str | Path, bucket: str, key: str
) -> str | None:
    """Store a local file in the configured object store; returns the version id, if any."""
    local_file = Path(local_file)
    if not local_file.is_file():
        raise FileNotFoundError(f"{local_file} is not a file")
    return open_object_store(settings).put_file(local_file, bucket, key)
