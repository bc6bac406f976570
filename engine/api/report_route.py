"""GET /jobs/{job_id}/report: the moderator's HTML page of one job, served by the API app, and
`report_link`, the presigned link to it that `modengine report --url` prints.

The page itself is built below the api layer (engine.report's JobReportBuilder, injected by
engine/server.py) so this module never imports PyAV; the builder also declares the page's
Content-Security-Policy, which is sent as a header. Authentication, account scoping, rate
limits and error envelopes are the API's own.
"""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.api.auth import Authenticator
from engine.api.keys import read_default_key
from engine.api.ratelimit import RateLimiter
from engine.api.responses import error_response, request_target
from engine.api.settings import ApiSettings
from engine.api.sigv4 import MAX_PRESIGN_EXPIRES_S, presign_url
from engine.errors import (
    InternalServerError,
    InvalidParameterException,
    ResourceNotFoundException,
    ServiceError,
)

log = logging.getLogger(__name__)


DEFAULT_LINK_EXPIRES_S = 3600


class ReportBuilder(Protocol):
    """What the route needs from engine.report.JobReportBuilder."""

    content_security_policy: str
    """The policy the page's own meta tag declares; sent as a header too."""

    def for_account(self, account: str, job_id: str, unblurred: bool) -> str:
        """The report page; ResourceNotFoundException for a job the account may not see."""
        ...


class ReportLinkError(ValueError):
    """A report link cannot be made (no credentials file, a bad lifetime); says what to fix."""

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
            page = await run_in_threadpool(
                report_builder.for_account, caller.account, job_id, unblurred
            )
            headers = {
                "x-amzn-RequestId": request_id,
                "Content-Security-Policy": report_builder.content_security_policy,
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


def report_link(
    settings,
    job_id: str,
    endpoint: str | None,
    unblurred: bool,
    expires_s: int = DEFAULT_LINK_EXPIRES_S,
) -> str:
    """A presigned GET link to the server's report of `job_id`, signed with the [default] key of
    the server's generated credentials file (<data_dir>/credentials); `settings` are the
    server's EngineSettings. ReportLinkError says what is missing."""
    if not 1 <= expires_s <= MAX_PRESIGN_EXPIRES_S:
        raise ReportLinkError(f"--expires must be 1..{MAX_PRESIGN_EXPIRES_S} seconds")
    credentials_file = ApiSettings.from_engine_settings(settings).credentials_file
    if credentials_file is None or not Path(credentials_file).is_file():
        raise ReportLinkError(
            f"no credentials file at {credentials_file} (start the server once, or give its "
            "--data-dir)"
        )
    key = read_default_key(Path(credentials_file))
    base = (endpoint or f"http://{settings.host}:{settings.port}").rstrip("/")
    url = f"{base}/jobs/{quote(job_id, safe='')}/report"
    if unblurred:
        url += "?unblurred=true"
    return presign_url(
        url, key.access_key_id, key.secret_access_key, settings.s3_region, expires_s
    )
