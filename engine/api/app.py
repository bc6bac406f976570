"""The ASGI app: AWS JSON 1.1 on `POST /`, routed by `X-Amz-Target`.

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
from engine.errors import InternalServerError, SerializationException, ServiceError
from engine.jobs import ModerationService

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_BODY_BYTES = 1024 * 1024


def build_app(
    service: ModerationService,
    authenticator: Authenticator | None = None,
    default_min_confidence: float = 50.0,
    lifespan=None,
) -> Starlette:
    """The app for one jobs service; `authenticator` is the SigV4 seam (default: accept any)."""
    authenticator = authenticator or AcceptAnyAuthenticator()

    async def handle(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            body = await request.body()
            if len(body) > MAX_BODY_BYTES:
                raise SerializationException(
                    f"The request body is larger than {MAX_BODY_BYTES} bytes"
                )
            operation = operation_for_target(request.headers.get("x-amz-target"), set(OPERATIONS))
            caller = authenticator.authenticate(
                request.method, request.url.path, request.headers, body
            )
            payload = validate_request(operation, parse_json(body))
            handler = OPERATIONS[operation.name]
            result = await run_in_threadpool(
                handler, service, caller, payload, default_min_confidence
            )
            return json_response(200, result, request_id)
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


def parse_json(body: bytes):
    """An empty body is `{}` (botocore sends one for operations without members)."""
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise SerializationException("The request body is not valid JSON") from None


def json_response(status: int, document: dict, request_id: str) -> Response:
    return Response(
        content=json.dumps(document, separators=(",", ":")),
        status_code=status,
        media_type=CONTENT_TYPE,
        headers={"x-amzn-RequestId": request_id},
    )


def error_response(error: ServiceError, request_id: str, status: int | None = None) -> Response:
    document = {"__type": error.code, "Message": error.message}
    return json_response(status or error.http_status, document, request_id)
