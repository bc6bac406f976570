"""Bounded load test of the HTTP API on 127.0.0.1: throughput and large-page latency.

A uvicorn server runs in a subprocess (real SigV4 verification, rate limiting on but set above
the offered load, jobs run by the scripted runner test double: no Ray). Its data directory is
seeded first, straight through the jobs layer, with one SUCCEEDED job of 100,000 detections.

1. Latency, on the quiet server: one client times GetContentModeration with MaxResults=1000 on
   the 100,000-detection job, TIMESTAMP and NAME order, first page and a deep page (offset
   95,000), `--samples` each.
2. Throughput: `--clients` threads send a fixed number of pre-signed requests over keep-alive
   connections (a quarter StartContentModeration with distinct ClientRequestTokens, the rest
   GetContentModeration of a small finished job), stopping at `--time-limit-s` whatever happens.

Writes benchmarks/results/api_load.json and prints a markdown table.

    python -m benchmarks.bench_api_load [--requests 4000] [--clients 16] [--samples 100]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from benchmarks.machine import machine_record

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULT_FILE = REPO_ROOT / "benchmarks" / "results" / "api_load.json"
BIG_JOB_ID = "b" * 64
BIG_JOB_DETECTIONS = 100_000
DEEP_OFFSET = 95_000
TARGET_CALLS_PER_S = 200.0
TARGET_P99_MS = 50.0
WARMUP_REQUESTS = 5


# -- the server process --------------------------------------------------------------------


def serve(data_dir: Path, port: int) -> None:
    """The server subprocess: the real server app (security on) over a scripted runner double."""
    import uvicorn

    from engine.config import EngineSettings
    from engine.notify import NotifySettings
    from engine.server import build_server_app
    from tests.doubles.scripted_runner import ScriptedRunnerDouble

    settings = EngineSettings(
        data_dir=data_dir, max_concurrent_jobs=100_000, api_start_rate_per_s=2000,
        api_start_burst=2000, api_get_rate_per_s=5000, api_get_burst=5000,
    )
    runner = ScriptedRunnerDouble(sample_interval_ms=settings.sample_interval_ms)
    notify = NotifySettings(sns_endpoint="http://127.0.0.1:9", max_attempts=1, timeout_s=1)
    app, _ = build_server_app(settings, lambda: runner, notify_settings=notify, worker_count=2)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def seed(data_dir: Path) -> tuple[str, str, str]:
    """Credentials, a small video script and the 100,000-detection job; returns the key."""
    from engine.api.keys import create_default_credentials, read_default_key
    from engine.jobs import JobStore, StartRequest
    from engine.results.detections import sort_detections
    from engine.storage.base import ObjectRef
    from tests.doubles.scripted_runner import synthetic_detections, write_script

    create_default_credentials(data_dir / "credentials")
    key = read_default_key(data_dir / "credentials")
    write_script(data_dir / "objects" / "videos" / "clip.json", 2000, {1000: {"Weapons": 90.0}})
    store = JobStore(data_dir / "jobs.sqlite3")
    request = StartRequest(ObjectRef("videos", "clip.json"), 50.0)
    store.create_job(BIG_JOB_ID, key.account, request, "7.0", 100)
    store.mark_running(BIG_JOB_ID)
    rows = synthetic_detections(BIG_JOB_DETECTIONS, seed=7)
    by_time = {"TIMESTAMPS": sort_detections(rows, "TIMESTAMP")}
    by_name = {"TIMESTAMPS": sort_detections(rows, "NAME")}
    store.complete_job(BIG_JOB_ID, by_time, by_name, retention_s=7 * 24 * 3600)
    store.close()
    return key.access_key_id, key.secret_access_key, key.account


@contextlib.contextmanager
def server_process(data_dir: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_api_load", "_serve", str(data_dir), str(port)],
        env=env,
        cwd=REPO_ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(url + "/", timeout=1)
                break
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the client side -----------------------------------------------------------------------


class Signer:
    """Pre-signs requests with botocore's SigV4 signer (as boto3 would), outside timed code."""

    def __init__(self, url: str, key_id: str, secret: str) -> None:
        self.url, self.key_id, self.secret = url, key_id, secret

    def request(self, operation: str, document: dict) -> tuple[bytes, dict]:
        from tests.signing import signed_headers

        body = json.dumps(document).encode()
        host = self.url.split("://", 1)[1]
        return body, signed_headers(self.key_id, self.secret, body, operation, host=host)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def throughput_phase(url, signer, small_job_id, requests, clients, time_limit_s) -> dict:
    """Fixed request count over `clients` threads; stops at the time limit regardless."""
    plan = []
    for number in range(requests):
        if number % 4 == 0:
            document = {
                "Video": {"S3Object": {"Bucket": "videos", "Name": "clip.json"}},
                "ClientRequestToken": f"load-{number}",
            }
            plan.append(
                ("StartContentModeration", *signer.request("StartContentModeration", document))
            )
        else:
            plan.append(
                (
                    "GetContentModeration",
                    *signer.request("GetContentModeration", {"JobId": small_job_id}),
                )
            )
    shares = [plan[i::clients] for i in range(clients)]
    errors: list[str] = []
    latencies: list[float] = []
    done = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + time_limit_s
    barrier = threading.Barrier(clients + 1)

    def work(share) -> None:
        local_latencies, local_errors = [], []
        with httpx.Client(base_url=url, timeout=30) as client:
            barrier.wait()
            for operation, body, headers in share:
                if time.monotonic() > stop_at:
                    break
                started = time.perf_counter()
                try:
                    response = client.post("/", content=body, headers=headers)
                    if response.status_code != 200:
                        local_errors.append(
                            f"{operation}: {response.status_code} {response.text[:120]}"
                        )
                except httpx.HTTPError as error:
                    local_errors.append(f"{operation}: {type(error).__name__}")
                local_latencies.append(time.perf_counter() - started)
        with lock:
            latencies.extend(local_latencies)
            errors.extend(local_errors)
            done[0] += len(local_latencies)

    threads = [threading.Thread(target=work, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed_s = time.perf_counter() - started
    return {
        "requests_planned": requests,
        "requests_sent": done[0],
        "clients": clients,
        "seconds": round(elapsed_s, 3),
        "calls_per_s": round(done[0] / elapsed_s, 1),
        "errors": len(errors),
        "error_samples": errors[:5],
        "latency_p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "latency_p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "time_limited": done[0] < requests,
    }


def latency_phase(url, signer, samples) -> dict:
    """p50/p99 of MaxResults=1000 pages of the 100,000-detection job, first and deep page."""
    results = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        for sort_by in ("TIMESTAMP", "NAME"):
            query = {"JobId": BIG_JOB_ID, "MaxResults": 1000, "SortBy": sort_by}
            deep_token, page_document = None, query
            for _ in range(DEEP_OFFSET // 1000):  # walk to the deep page to get its token
                body, headers = signer.request("GetContentModeration", page_document)
                page = client.post("/", content=body, headers=headers).json()
                deep_token = page["NextToken"]
                page_document = {**query, "NextToken": deep_token}
            for name, document in (("first_page", query), ("deep_page", page_document)):
                body, headers = signer.request("GetContentModeration", document)
                for _ in range(WARMUP_REQUESTS):
                    client.post("/", content=body, headers=headers)
                timings = []
                for _ in range(samples):
                    started = time.perf_counter()
                    response = client.post("/", content=body, headers=headers)
                    timings.append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text[:200]
                items = len(response.json()["ModerationLabels"])
                results[f"{sort_by}/{name}"] = {
                    "items": items,
                    "samples": samples,
                    "p50_ms": round(percentile(timings, 0.50) * 1000, 2),
                    "p99_ms": round(percentile(timings, 0.99) * 1000, 2),
                    "response_bytes": len(response.content),
                }
    return results


def small_job(url, signer) -> str:
    body, headers = signer.request(
        "StartContentModeration",
        {"Video": {"S3Object": {"Bucket": "videos", "Name": "clip.json"}}},
    )
    job_id = httpx.post(url + "/", content=body, headers=headers, timeout=30).json()["JobId"]
    for _ in range(200):
        body, headers = signer.request("GetContentModeration", {"JobId": job_id})
        if (
            httpx.post(url + "/", content=body, headers=headers, timeout=30).json()["JobStatus"]
            != "IN_PROGRESS"
        ):
            return job_id
        time.sleep(0.05)
    raise RuntimeError("the small job did not finish")


def render_markdown(report: dict) -> str:
    load = report["throughput"]
    lines = [
        "| measure | value | target |",
        "|---|---|---|",
        (
            f"| API calls/s ({load['clients']} clients, {load['requests_sent']} calls) | "
            f"{load['calls_per_s']} | >= {TARGET_CALLS_PER_S:g} |"
        ),
        f"| errors | {load['errors']} | 0 |",
        (
            "| call latency p50 / p99 under load (ms) | "
            f"{load['latency_p50_ms']} / {load['latency_p99_ms']} | |"
        ),
    ]
    for name, figures in report["latency"].items():
        lines.append(
            f"| GetContentModeration 1000 items, {name} p50 / p99 (ms) | "
            f"{figures['p50_ms']} / {figures['p99_ms']} | p99 < {TARGET_P99_MS:g} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_serve":
        serve(Path(argv[1]), int(argv[2]))
        return 0
    parser = argparse.ArgumentParser(prog="bench_api_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--time-limit-s", type=float, default=120.0)
    parser.add_argument("--out", type=Path, default=RESULT_FILE)
    options = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-api-") as temporary:
        data_dir = Path(temporary)
        key_id, secret, _ = seed(data_dir)
        with server_process(data_dir) as url:
            signer = Signer(url, key_id, secret)
            latency = latency_phase(url, signer, options.samples)  # on a quiet server
            job_id = small_job(url, signer)
            throughput = throughput_phase(
                url, signer, job_id, options.requests, options.clients, options.time_limit_s
            )
    report = {
        "command": "python -m benchmarks.bench_api_load " + " ".join(argv),
        "machine": {
            **machine_record(),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        },
        "server": (
            "uvicorn subprocess, SigV4 on, rate limits above the offered load, "
            "scripted runner double"
        ),
        "throughput": throughput,
        "latency": latency,
        "targets": {"calls_per_s": TARGET_CALLS_PER_S, "page_p99_ms": TARGET_P99_MS},
        "targets_met": throughput["calls_per_s"] >= TARGET_CALLS_PER_S
        and throughput["errors"] == 0
        and all(figures["p99_ms"] < TARGET_P99_MS for figures in latency.values()),
    }
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(report, indent=2) + "\n")
    print(render_markdown(report))
    print(f"targets met: {report['targets_met']}; wrote {options.out}")
    return 0 if report["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
