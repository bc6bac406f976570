"""The operator's side of the HTTP server: `GET /healthz`, `GET /metrics`, and for every API
request its access-log line and its request metrics.

Kept apart from engine/api/app.py (the AWS wire protocol) because none of it is part of the
contract a Rekognition client sees; the metric definitions themselves live in engine/metrics.py,
a leaf the jobs layer counts into too. Knows nothing about Ray or PyAV.

`/healthz` is never authenticated (load balancers and orchestrators probe it without keys).
`/metrics` is unauthenticated by default, like most Prometheus targets, and shows only
aggregate counts (no job ids, keys, buckets or object names); `metrics_auth_enabled` makes it
require a SigV4 signature like the API.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.api.contract import target_prefix
from engine.metrics import EngineMetrics

access_log = logging.getLogger("engine.access")

UNKNOWN_OPERATION = "unknown"

HealthCheck = Callable[[], dict]
ScrapeGuard = Callable[[Request], Awaitable[Response | None]]
"""Checks a scrape's credentials: None lets it through, a Response is the refusal to send."""


@dataclass
class Exchange:
    """One API request as the access log and the metrics see it; the handler fills in the
    caller's account and the error code as it learns them."""

    operation: str
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    account: str | None = None
    error_code: str | None = None
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def begin(cls, request: Request, known_operations: set[str]) -> Exchange:
        """Start timing; the operation label comes from X-Amz-Target when it names a known
        operation, else "unknown" (labels must stay a small, fixed set)."""
        target = request.headers.get("x-amz-target") or ""
        prefix = target_prefix() + "."
        name = target[len(prefix):] if target.startswith(prefix) else ""
        return cls(operation=name if name in known_operations else UNKNOWN_OPERATION)

    def finish(self, response: Response, metrics: EngineMetrics | None) -> None:
        """Count the request and write its access-log line (inside the request-id context)."""
        seconds = time.perf_counter() - self.started
        status = response.status_code
        self.error_code = self.error_code or error_code_of(response)
        if metrics is not None:
            metrics.request_served(self.operation, status, seconds, self.error_code)
        latency_ms = round(seconds * 1000, 1)
        access_log.info(
            "%s %d %.1f ms account=%s%s",
            self.operation, status, latency_ms, self.account or "-",
            f" error={self.error_code}" if self.error_code else "",
            extra={"operation": self.operation, "status": status, "latency_ms": latency_ms,
                   "account": self.account, "error_code": self.error_code},
        )


def error_code_of(response: Response) -> str | None:
    """The `__type` of an error response. engine/api/app.py serialises every error, whichever
    branch caught it, into that one envelope, so reading it back counts them all alike."""
    if response.status_code < 400:
        return None
    try:
        return json.loads(response.body).get("__type")
    except (ValueError, AttributeError):
        return None


def operator_routes(
    metrics: EngineMetrics,
    health_check: HealthCheck | None = None,
    scrape_guard: ScrapeGuard | None = None,
) -> list[Route]:
    """The `/healthz` and `/metrics` routes; they go ahead of any catch-all route."""

    async def healthz(request: Request) -> Response:
        started = time.perf_counter()
        report = {"status": "ok"} if health_check is None else await run_in_threadpool(health_check)
        status = 200 if report.get("status") == "ok" else 503
        metrics.request_served("healthz", status, time.perf_counter() - started)
        return Response(json.dumps(report, separators=(",", ":")), status_code=status,
                         media_type="application/json", headers={"cache-control": "no-store"})

    async def scrape(request: Request) -> Response:
        started = time.perf_counter()
        refusal = None if scrape_guard is None else await scrape_guard(request)
        if refusal is not None:
            metrics.request_served("metrics", refusal.status_code, time.perf_counter() - started)
            return refusal
        # Reading jobs by state and the actors' figures blocks: never on the event loop.
        body, content_type = await run_in_threadpool(metrics.exposition)
        metrics.request_served("metrics", 200, time.perf_counter() - started)
        return Response(body, status_code=200, headers={"content-type": content_type})

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", scrape, methods=["GET"]),
    ]
