"""The ASGI app: AWS JSON 1.1 on `POST /`, routed by `X-Amz-Target`.

Each request goes: bounded body read -> authenticate (SigV4) -> operation -> per-account rate
limit -> JSON parse -> validation -> handler.

Every response carries `x-amzn-RequestId`. Every error, whatever raised it, is serialised here
and only here as `{"__type": <code>, "Message": ...}` with its status; an unexpected exception
becomes InternalServerError without a stack trace on the wire. Handlers run in a thread pool so
SQLite and object-store calls never block the event loop. Knows nothing about Ray or PyAV.
"""

from __future__ import annotations

import json
import logging
import uuid

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.api.auth import AcceptAnyAuthenticator, Authenticator
from engine.api.contract import operation_for_target, validate_request
from engine.api.operations import OPERATIONS
from engine.api.ratelimit import RateLimiter
from engine.api.settings import DEFAULT_MAX_BODY_BYTES
from engine.errors import InternalServerError, SerializationException, ServiceError
from engine.jobs import ModerationService

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_BODY_BYTES = DEFAULT_MAX_BODY_BYTES


def build_app(
    service: ModerationService,
    authenticator: Authenticator | None = None,
    default_min_confidence: float = 50.0,
    lifespan=None,
    rate_limiter: RateLimiter | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Starlette:
    """The app for one jobs service.

    `authenticator` defaults to accepting any caller (tests, local development); servers pass
    engine.api.sigv4.SigV4Authenticator. `rate_limiter` None means no rate limits.
    """
    authenticator = authenticator or AcceptAnyAuthenticator()

    async def handle(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            body = await read_body(request, max_body_bytes)
            caller = authenticator.authenticate(
                request.method, request_target(request), request.headers, body
            )
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
        except ServiceError as error:
            return error_response(error, request_id)
        except Exception:
            log.exception("unexpected error serving request %s", request_id)
            return error_response(InternalServerError("Internal server error"), request_id)

    async def not_found(request: Request) -> Response:
        error = SerializationException("Only POST / with an X-Amz-Target header is served")
        return error_response(error, str(uuid.uuid4()), status=404)

    routes = [
        Route("/", handle, methods=["POST"]),
        Route("/{path:path}", not_found, methods=["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


class BodyTooLargeError(SerializationException):
    """The body is over the configured maximum; answered 413 and the connection closed."""

    code = "SerializationException"


async def read_body(request: Request, max_body_bytes: int) -> bytes:
    """The body, refused as soon as it is known to be too large (never read in full then)."""
    declared = request.headers.get("content-length")
    too_large = BodyTooLargeError(f"The request body is larger than {max_body_bytes} bytes")
    if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
        raise too_large
    chunks, received = [], 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_body_bytes:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def request_target(request: Request) -> str:
    """Path plus `?query` as received, which is what the client signed."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    return request.url.path + (f"?{query}" if query else "")


def parse_json(body: bytes):
    """An empty body is `{}` (botocore sends one for operations without members)."""
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise SerializationException("The request body is not valid JSON") from None


def json_response(status: int, document: dict, request_id: str, close: bool = False) -> Response:
    headers = {"x-amzn-RequestId": request_id}
    if close:
        headers["connection"] = "close"
    return Response(
        content=json.dumps(document, separators=(",", ":")),
        status_code=status,
        media_type=CONTENT_TYPE,
        headers=headers,
    )


def error_response(
    error: ServiceError, request_id: str, status: int | None = None, close: bool = False
) -> Response:
    document = {"__type": error.code, "Message": error.message}
    return json_response(status or error.http_status, document, request_id, close)
