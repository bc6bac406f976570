"""Process entry points the CLI wires up: `serve` (uvicorn) and `put_object` (store a video).

This is where the layers meet: settings -> object store + job system (+ the real cluster runner,
built lazily on the first job) -> ASGI app -> uvicorn.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from engine.api import build_app
from engine.config import EngineSettings
from engine.jobs import JobSystem, default_runner_factory, open_job_system
from engine.jobs.executor import RunnerFactory
from engine.notify import NotifySettings
from engine.storage import open_object_store

log = logging.getLogger(__name__)


def build_server_app(
    settings: EngineSettings,
    runner_factory: RunnerFactory | None = None,
    notify_settings: NotifySettings | None = None,
) -> tuple[Starlette, JobSystem]:
    """The app and its job system; the job system starts (and resumes jobs) with the app."""
    jobs = open_job_system(
        settings,
        runner_factory or default_runner_factory(settings),
        notify_settings=notify_settings,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app):
        jobs.start()
        try:
            yield
        finally:
            jobs.stop()

    app = build_app(
        jobs.service, default_min_confidence=settings.default_min_confidence, lifespan=lifespan
    )
    return app, jobs


def serve(
    settings: EngineSettings,
    host: str | None = None,
    port: int | None = None,
    runner_factory: RunnerFactory | None = None,
    notify_settings: NotifySettings | None = None,
) -> None:
    """Run the API until interrupted; unfinished jobs resume at the next start."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app, _ = build_server_app(settings, runner_factory, notify_settings)
    host = host or settings.host
    port = settings.port if port is None else port
    log.info(
        "serving the Rekognition-compatible API on http://%s:%d (data in %s)",
        host,
        port,
        settings.data_dir,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def put_object(
    settings: EngineSettings, local_file: str | Path, bucket: str, key: str
) -> str | None:
    """Store a local file in the configured object store; returns the version id, if any."""
    local_file = Path(local_file)
    if not local_file.is_file():
        raise FileNotFoundError(f"{local_file} is not a file")
    return open_object_store(settings).put_file(local_file, bucket, key)
