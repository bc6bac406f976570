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
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.api import build_app
from engine.api.keys import read_default_key, read_profile_key
from engine.api.security import open_api_security
from engine.api.settings import CREDENTIALS_FILE, ApiSettings
from engine.api.wire import image_moderation_to_wire
from engine.config import EngineSettings
from engine.jobs import JobSystem, MediaAnalysisBackend, default_runner_factory, open_job_system
from engine.jobs.executor import RunnerFactory
from engine.jobs.health import check_health
from engine.logs import configure_logging
from engine.metrics import EngineMetrics
from engine.notify import (
    SIGNING_CERT_PATH,
    NotificationSigner,
    NotifySettings,
    load_or_create_signer,
)
from engine.report import JobReportBuilder
from engine.storage import access_policy, open_object_store, writable_location
from engine.video import decode_path_report

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
    decode = decode_report(settings)
    metrics = EngineMetrics.for_settings(settings, decode)
    # Callers' accounts are proven only when requests are authenticated; without that the
    # access rules would check names anyone can claim, so they are not enforced.
    access = access_policy(settings, read_default_key(security.credentials_file).account,
                           enforced=api_settings.auth_enabled)
    notify_settings = notify_settings or NotifySettings.from_engine_settings(settings)
    signer = load_or_create_signer(settings.data_dir, notify_settings.signing_cert_url or (
        f"http://{settings.host}:{settings.port}{SIGNING_CERT_PATH}"))
    jobs = open_job_system(
        settings,
        runner_factory or default_runner_factory(settings),
        objects=open_object_store(settings, access),
        notify_settings=notify_settings,
        worker_count=worker_count,
        metrics=metrics,
        signer=signer,
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
        health_check=lambda: {**check_health(jobs.store, jobs.executor), "decode": decode},
        metrics_auth_enabled=settings.metrics_auth_enabled,
        report_builder=JobReportBuilder(settings, jobs.store, jobs.service.objects),
        extra_routes=[signing_certificate_route(signer)],
    )
    app.state.metrics = metrics
    app.state.credentials_file = security.credentials_file
    app.state.auth_enabled = api_settings.auth_enabled
    return app, jobs


def signing_certificate_route(signer: NotificationSigner) -> Route:
    """GET the certificate that verifies our signed webhook deliveries (their SigningCertURL):
    public by nature, so unauthenticated."""

    async def certificate(request: Request) -> Response:
        return Response(signer.certificate_pem, media_type="application/x-pem-file")

    return Route(SIGNING_CERT_PATH, certificate, methods=["GET"])


def decode_report(settings: EngineSettings) -> dict:
    """What video decoding does on this machine; a GPU whose NVDEC cannot be used is logged
    as a warning at start (and shows in /healthz and modengine_decode_info), because
    decoding on the CPU instead is otherwise silent and many times slower."""
    report = decode_path_report(settings.hwaccel, settings.preprocess)
    if report["nvdec_fallback"]:
        log.warning("video decode: NVDEC WANTED BUT UNAVAILABLE: %s", report["reason"])
    else:
        log.info("video decode: %s decoder, %s scaler", report["decoder"], report["scaler"])
    return report


def serve(
    settings: EngineSettings, host: str | None = None, port: int | None = None,
    runner_factory: RunnerFactory | None = None, notify_settings: NotifySettings | None = None,
) -> None:
    """Run the API until interrupted; unfinished jobs resume at the next start."""
    configure_logging(settings.log_format, logging.INFO)
    host = host or settings.host
    port = settings.port if port is None else port
    # Where it really listens: the default SigningCertURL is derived from it.
    settings = settings.replace(host=host, port=port)
    app, _ = build_server_app(settings, runner_factory, notify_settings)
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
    settings: EngineSettings, local_file: str | Path, bucket: str, key: str,
    account: str | None = None, profile: str | None = None,
) -> str | None:
    """Store a local file in the configured object store for an account; returns the version id,
    if any. The account is `account`, else that of `profile` in `<data_dir>/credentials`, else
    that of its [default] profile; a new bucket of the embedded store becomes that account's, and
    a bucket the account may not write is refused (AccessDeniedException) before anything is
    written. Without a credentials file (no server ever ran here) nothing is checked."""
    local_file = Path(local_file)
    if not local_file.is_file():
        raise FileNotFoundError(f"{local_file} is not a file")
    credentials = settings.data_dir / CREDENTIALS_FILE
    default_account = read_default_key(credentials).account if credentials.exists() else None
    if account is None and (profile is not None or default_account is not None):
        account = read_profile_key(credentials, profile or "default").account
    store = open_object_store(settings, access_policy(settings, default_account))
    if account is not None:
        writable_location(store, account, bucket, key)
    return store.put_file(local_file, bucket, key)
