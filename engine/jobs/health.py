"""Is this server able to take and finish jobs? The answer behind `GET /healthz`.

Healthy means: the job store answers a query, and the executor's job threads are all alive
(they are started with the app and gone once it stops). Ray is deliberately not part of it:
the cluster starts lazily on the first job, and a health probe must never be what starts it.
Knows nothing about HTTP.
"""

from __future__ import annotations

from engine.jobs.executor import JobExecutor
from engine.jobs.store import JobStore


def check_health(store: JobStore, executor: JobExecutor) -> dict:
    """`{"status": "ok", ...}` or `{"status": "unavailable", "reason": ...}` with what was seen."""
    try:
        jobs = store.count_jobs_by_state()
    except Exception as error:  # noqa: BLE001 - any store failure makes the server unhealthy
        return {"status": "unavailable", "reason": f"the job store does not answer: {error}"}
    alive, expected = executor.workers_alive()
    workers = {"alive": alive, "expected": expected}
    if expected == 0:
        return {"status": "unavailable", "reason": "the job executor is not running",
                "workers": workers}
    if alive < expected:
        return {"status": "unavailable",
                "reason": f"{expected - alive} of {expected} job threads have stopped",
                "workers": workers}
    return {"status": "ok", "jobs": jobs, "workers": workers}
