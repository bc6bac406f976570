"""The ASGI app: AWS JSON 1.1 on `POST /`, routed by `X-Amz-Target`.

Each request goes: bounded body read -> authenticate (SigV4) -> operation -> per-account rate
limit -> JSON parse -> validation -> handler.

Every response carries `x-amzn-RequestId`. Every error, whatever raised it, is caught here (or
in the report route) and written by engine/api/responses.py as `{"__type": <code>, "Message":
...}` with its status; an unexpected exception becomes InternalServerError without a stack
trace on the wire. GET /healthz and /metrics come from engine/api/operator_routes.py, GET
/jobs/{id}/report from engine/api/report_route.py. Handlers run in a thread pool so
SQLite and object-store calls never block the event loop. Knows nothing about Ray or PyAV.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine import logs
from engine.api.auth import AcceptAnyAuthenticator, Authenticator
from engine.api.contract import operation_for_target, target_prefix, validate_request
from engine.api.operations import OPERATIONS
from engine.api.operator_routes import Exchange, HealthCheck, operator_routes
from engine.api.ratelimit import RateLimiter
from engine.api.report_route import ReportBuilder, report_routes
from engine.api.responses import error_response, json_response, request_target
from engine.api.settings import DEFAULT_MAX_BODY_BYTES
from engine.errors import (
    ImageTooLargeException,
    InternalServerError,
    SerializationException,
    ServiceError,
)
from engine.jobs import ModerationService
from engine.metrics import EngineMetrics

log = logging.getLogger(__name__)

MAX_BODY_BYTES = DEFAULT_MAX_BODY_BYTES


def build_app(
    service: ModerationService,
    authenticator: Authenticator | None = None,
    default_min_confidence: float = 50.0,
    lifespan=None,
    rate_limiter: RateLimiter | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    metrics: EngineMetrics | None = None,
    health_check: HealthCheck | None = None,
    metrics_auth_enabled: bool = False,
    report_builder: ReportBuilder | None = None,
    extra_routes: Sequence[Route] = (),
) -> Starlette:
    """The app for one jobs service.

    `report_builder` (engine.report, injected by engine/server.py so this module never imports
    PyAV) serves `GET /jobs/{job_id}/report`; None leaves that route out. `extra_routes` are
    served as they are (the notification signing certificate, engine/server.py).

    `authenticator` defaults to accepting any caller (tests, local development); servers pass
    engine.api.sigv4.SigV4Authenticator. `rate_limiter` None means no rate limits.

    Operator routes (engine/api/operator_routes.py): `metrics` (default: a fresh registry of
    request metrics only) is served on GET /metrics, SigV4-checked only with `metrics_auth_enabled`;
    `health_check` answers GET /healthz. Each API request runs with its request id in the
    logging context and ends with one access-log line.
    """
    authenticator = authenticator or AcceptAnyAuthenticator()
    metrics = metrics or EngineMetrics()

    async def handle(request: Request) -> Response:
        exchange = Exchange.begin(request, set(OPERATIONS))
        with logs.bound(logs.request_id, exchange.request_id):
            response = await answer(request, exchange)
            exchange.finish(response, metrics)
        return response

    async def answer(request: Request, exchange: Exchange) -> Response:
        request_id = exchange.request_id
        try:
            body = await read_body(request, *body_limit(request, max_body_bytes, service))
            caller = authenticator.authenticate(
                request.method, request_target(request), request.headers, body
            )
            exchange.account = caller.account
            operation = operation_for_target(request.headers.get("x-amz-target"), set(OPERATIONS))
            if rate_limiter is not None:
                rate_limiter.check(caller.account, operation.name)
            payload = validate_request(operation, parse_json(body))
            handler = OPERATIONS[operation.name]
            result = await run_in_threadpool(
                handler, service, caller, payload, default_min_confidence
            )
            return json_response(200, result, request_id)
        except BodyTooLargeError as error:
            return error_response(error, request_id, status=413, close=True)
        except ImageBodyTooLargeError as error:
            return error_response(error, request_id, close=True)
        except ServiceError as error:
            return error_response(error, request_id)
        except Exception:
            log.exception("unexpected error serving request %s", request_id)
            return error_response(InternalServerError("Internal server error"), request_id)

    async def not_found(request: Request) -> Response:
        error = SerializationException("Only POST / with an X-Amz-Target header is served")
        return error_response(error, str(uuid.uuid4()), status=404)

    async def guard_scrape(request: Request) -> Response | None:
        """SigV4 on GET /metrics, exactly as on the API (None: the caller may scrape)."""
        try:
            body = await read_body(request, max_body_bytes)
            authenticator.authenticate(request.method, request_target(request), request.headers, body)
        except ServiceError as error:
            return error_response(error, str(uuid.uuid4()))
        return None

    routes = [
        Route("/", handle, methods=["POST"]),
        *operator_routes(metrics, health_check, guard_scrape if metrics_auth_enabled else None),
        *report_routes(report_builder, authenticator, rate_limiter),
        *extra_routes,
        Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


class BodyTooLargeError(SerializationException):
    """The body is over the configured maximum; answered 413 and the connection closed."""

    code = "SerializationException"


class ImageBodyTooLargeError(ImageTooLargeException):
    """A DetectModerationLabels body too large for any acceptable image; answered as AWS does
    for an over-limit image (400 ImageTooLargeException) and the connection closed."""

    code = "ImageTooLargeException"


IMAGE_OPERATION = "DetectModerationLabels"


def body_limit(
    request: Request, max_body_bytes: int, service: ModerationService
) -> tuple[int, ServiceError]:
    """The body limit for this request's operation (known from X-Amz-Target before the body is
    read) and the error for going over it. DetectModerationLabels carries its image as base64
    text, so its limit grows by the base64 size of the largest image the service accepts;
    every other operation keeps `max_body_bytes` and 413."""
    if request.headers.get("x-amz-target") != f"{target_prefix()}.{IMAGE_OPERATION}":
        return max_body_bytes, BodyTooLargeError(
            f"The request body is larger than {max_body_bytes} bytes"
        )
    limit = max_body_bytes + 4 * -(-service.max_image_bytes // 3)
    return limit, ImageBodyTooLargeError(
        f"The request body is larger than {limit} bytes: the image may be at most "
        f"{service.max_image_bytes} bytes before base64 encoding"
    )


async def read_body(
    request: Request, max_body_bytes: int, too_large: ServiceError | None = None
) -> bytes:
    """The body, refused as soon as it is known to be too large (never read in full then)."""
    declared = request.headers.get("content-length")
    too_large = too_large or BodyTooLargeError(
        f"The request body is larger than {max_body_bytes} bytes"
    )
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        raise too_large
    chunks, received = [], 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_body_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes):
    """An empty body is `{}` (botocore sends one for operations without members)."""
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise SerializationException("The request body is not valid JSON") from None
