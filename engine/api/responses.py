"""The wire side of every response the app writes, in one place: AWS JSON 1.1 bodies, the
`{"__type", "Message"}` error envelope with `x-amzn-RequestId`, and the signed request target.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from engine.errors import ServiceError

CONTENT_TYPE = "application/x-amz-json-1.1"


def request_target(request: Request) -> str:
    """Path plus `?query` as received, which is what the client signed."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    return request.url.path + (f"?{query}" if query else "")


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
