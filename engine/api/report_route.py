"""GET /jobs/{job_id}/report: the moderator's HTML page of one job, served by the API app.

The page itself is built below the api layer (engine.report, injected as a callable by
engine/server.py) so this module never imports PyAV. Authentication, account scoping, rate
limits and error envelopes are the API's own.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.api.auth import Authenticator
from engine.api.ratelimit import RateLimiter
from engine.api.responses import error_response, request_target
from engine.errors import (
    InternalServerError,
    InvalidParameterException,
    ResourceNotFoundException,
    ServiceError,
)

log = logging.getLogger(__name__)


ReportBuilder = Callable[[str, str, bool], str]
"""(account, job_id, unblurred) -> the report page; raises ResourceNotFoundException for a job
the account may not see (engine.report.JobReportBuilder.for_account)."""

REPORT_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'"
)
"""The page loads nothing: the same policy its own meta tag declares."""

_JOB_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_FLAGS = {"true": True, "1": True, "false": False, "0": False}


def report_routes(
    report_builder: ReportBuilder | None,
    authenticator: Authenticator,
    rate_limiter: RateLimiter | None,
) -> list[Route]:
    """The report route, authenticated like the API (SigV4 in the Authorization header or in
    the query string, so a browser can open a presigned link) and scoped to the caller's
    account; rate-limited as GetContentModeration. Errors use the API's JSON envelope, with
    404 for a job the caller cannot see."""
    if report_builder is None:
        return []

    async def report(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            caller = authenticator.authenticate(
                "GET", request_target(request), request.headers, b""
            )
            if rate_limiter is not None:
                rate_limiter.check(caller.account, "GetContentModeration")
            job_id = request.path_params["job_id"]
            if not _JOB_ID.match(job_id):
                raise InvalidParameterException("JobId must be 1-64 characters of [a-zA-Z0-9-_]")
            unblurred = _FLAGS.get(request.query_params.get("unblurred", "false").lower())
            if unblurred is None:
                raise InvalidParameterException("unblurred must be true or false")
            page = await run_in_threadpool(report_builder, caller.account, job_id, unblurred)
            headers = {
                "x-amzn-RequestId": request_id,
                "Content-Security-Policy": REPORT_CONTENT_SECURITY_POLICY,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "private, no-store",
            }
            return Response(page, 200, media_type="text/html; charset=utf-8", headers=headers)
        except ResourceNotFoundException as error:
            return error_response(error, request_id, status=404)
        except ServiceError as error:
            return error_response(error, request_id)
        except Exception:
            log.exception("unexpected error serving report request %s", request_id)
            return error_response(InternalServerError("Internal server error"), request_id)

    return [Route("/jobs/{job_id}/report", report, methods=["GET"])]
