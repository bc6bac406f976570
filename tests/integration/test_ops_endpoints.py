"""GET /healthz and GET /metrics on a real in-process server (uvicorn, SigV4, the local store),
with jobs run by the scripted runner double: the metrics parse with prometheus_client's parser
and move when jobs run and fail; health turns 503 when the executor stops; `modengine serve`
writes JSON log lines carrying the request id the client got."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.doubles.scripted_runner import write_script
from tests.integration.api_fixtures import (
    ServerProcess,
    rekognition_client,
    scripted_server,
    server_keys,
    wait_for_job,
)
from tests.integration.metrics_scrape import scrape, value

pytestmark = [pytest.mark.integration]


def start(client, key: str) -> str:
    return client.start_content_moderation(Video={"S3Object": {"Bucket": "videos", "Name": key}})[
        "JobId"
    ]


def test_metrics_counters_move_when_jobs_run_and_fail(tmp_path):
    with scripted_server(tmp_path) as (url, _, settings):
        objects = settings.data_dir / "objects" / "videos"
        write_script(objects / "ok.json", 6000, {1000: {"Weapons": 90.0}})
        write_script(objects / "bad.json", 3000, fail="the stream is corrupt")
        client = rekognition_client(url)
        before = scrape(url)
        good, bad = start(client, "ok.json"), start(client, "bad.json")
        wait_for_job(client, good, timeout_s=20)
        wait_for_job(client, bad, timeout_s=20)
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.get_content_moderation(JobId="0" * 64)
        after = scrape(url)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("modengine_jobs_started_total") == 2
    assert moved("modengine_jobs_finished_total", status="SUCCEEDED") == 1
    assert moved("modengine_jobs_finished_total", status="FAILED") == 1
    assert moved("modengine_errors_total", source="job", type="video") == 1
    assert moved("modengine_errors_total", source="api", type="ResourceNotFoundException") == 1
    # ok.json: 6 s in 4 s segments -> 2 segments, one sample a second -> 6 frames.
    assert moved("modengine_segments_completed_total") == 2
    assert moved("modengine_frames_classified_total") == 6
    assert moved("modengine_http_requests_total", operation="StartContentModeration",
                 status="200") == 2
    assert moved("modengine_http_requests_total", operation="GetContentModeration",
                 status="400") == 1
    assert moved("modengine_http_request_duration_seconds_count",
                 operation="StartContentModeration") == 2
    assert value(after, "modengine_jobs", state="SUCCEEDED") == 1
    assert value(after, "modengine_jobs", state="FAILED") == 1
    assert value(after, "modengine_jobs", state="RUNNING") == 0
    assert value(after, "modengine_decode_info", mode="accurate", hwaccel="auto") == 1
    # The scripted runner has no inference pool: nothing is invented for it.
    assert "modengine_inference_up" not in after


def test_healthz_is_ok_then_503_once_the_executor_stops(tmp_path):
    with scripted_server(tmp_path) as (url, jobs, _):
        healthy = httpx.get(url + "/healthz", timeout=10)
        assert healthy.status_code == 200
        report = healthy.json()
        assert report["status"] == "ok"
        assert report["workers"]["alive"] == report["workers"]["expected"] >= 1
        assert set(report["jobs"]) == {"SUBMITTED", "RUNNING", "SUCCEEDED", "FAILED"}
        assert report["decode"]["decoder"] in ("nvdec", "software")
        assert isinstance(report["decode"]["nvdec_fallback"], bool)

        jobs.executor.stop()
        deadline = time.monotonic() + 10
        while True:
            unhealthy = httpx.get(url + "/healthz", timeout=10)
            if unhealthy.status_code == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert unhealthy.status_code == 503
        assert unhealthy.json()["status"] == "unavailable"
        assert "executor" in unhealthy.json()["reason"]


def signed_get(url: str, keys: tuple[str, str]) -> dict[str, str]:
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(*keys), "rekognition", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def test_metrics_may_require_sigv4_but_healthz_never_does(tmp_path):
    with scripted_server(tmp_path, metrics_auth_enabled=True) as (url, _, _):
        refused = httpx.get(url + "/metrics", timeout=10)
        assert refused.status_code == 403
        assert refused.json()["__type"] == "MissingAuthenticationTokenException"
        forged = httpx.get(url + "/metrics", timeout=10,
                           headers=signed_get(url + "/metrics", ("x", "not-the-secret")))
        assert forged.status_code in (400, 403) and forged.json()["__type"]
        samples = scrape(url, headers=signed_get(url + "/metrics", server_keys(url)))
        assert value(samples, "modengine_http_requests_total", operation="metrics",
                     status="403") >= 1
        assert httpx.get(url + "/healthz", timeout=10).status_code == 200


def test_serve_writes_json_logs_with_the_request_id_the_client_got(tmp_path):
    """`modengine serve`'s own entry point (engine.server.serve) with MODENGINE_LOG_FORMAT=json;
    no job runs, so no Ray starts."""
    env = {"MODENGINE_DATA_DIR": str(tmp_path / "data"), "MODENGINE_LOG_FORMAT": "json",
           "RAY_ADDRESS": "local"}
    server = ServerProcess(tmp_path / "data", env, [], tmp_path / "server.log").start()
    try:
        client = rekognition_client(server.url)
        with pytest.raises(client.exceptions.ResourceNotFoundException) as raised:
            client.get_content_moderation(JobId="0" * 64)
        request_id = raised.value.response["ResponseMetadata"]["RequestId"]
        assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
        deadline = time.monotonic() + 10
        while request_id not in server.log_tail(100_000) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.stop()
    lines = [json.loads(line) for line in server.log_tail(100_000).splitlines()
             if line.startswith("{")]
    assert lines, server.log_tail()
    access = [line for line in lines if line.get("request_id") == request_id]
    assert [(line["logger"], line["operation"], line["status"], line["error_code"])
            for line in access] == [
        ("engine.access", "GetContentModeration", 400, "ResourceNotFoundException")]
    assert access[0]["account"] and access[0]["latency_ms"] >= 0
    assert {"time", "level", "message", "job_id"} <= set(access[0])
    assert any(line["logger"] == "engine.server" and "serving" in line["message"] for line in lines)
