"""engine/logs.py and its use by the API and the job threads: JSON lines that parse, carrying the
request id the client saw in `x-amzn-RequestId` and the job id of a job thread."""

from __future__ import annotations

import io
import json
import logging

import pytest
from starlette.testclient import TestClient

from engine import logs
from engine.api import build_app
from engine.config import EngineSettings
from tests.doubles.scripted_runner import scripted_job_system, write_script

TARGET = "RekognitionService."
AUTH = ("AWS4-HMAC-SHA256 Credential=AKIDLOGS/20260101/us-east-1/rekognition/aws4_request, "
        "SignedHeaders=host, Signature=0")


@pytest.fixture()
def json_lines():
    """Everything logged while the test runs, as parsed JSON lines (root at INFO)."""
    stream = io.StringIO()
    handler = logs.build_handler("json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_json_lines_carry_context_and_extra_fields(json_lines):
    log = logging.getLogger("engine.test")
    with logs.bound(logs.request_id, "req-1"), logs.bound(logs.job_id, "job-9"):
        log.info("hello %s", "world", extra={"status": 200})
    log.warning("outside")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    inside, outside, failed = json_lines()
    assert inside["message"] == "hello world" and inside["level"] == "INFO"
    assert inside["logger"] == "engine.test" and inside["time"].endswith("+00:00")
    assert (inside["request_id"], inside["job_id"], inside["status"]) == ("req-1", "job-9", 200)
    assert outside["request_id"] is None and outside["job_id"] is None
    assert "ValueError: boom" in failed["exception"]


def test_text_format_shows_the_ids_and_configure_replaces_only_its_own_handler():
    stream, other = io.StringIO(), logging.NullHandler()
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    root.addHandler(other)
    try:
        logs.configure_logging("json", logging.INFO, stream=io.StringIO())
        logs.configure_logging("text", logging.INFO, stream=stream)
        ours = [h for h in root.handlers if getattr(h, "_modengine", False)]
        assert len(ours) == 1 and other in root.handlers
        with logs.bound(logs.request_id, "req-2"):
            logging.getLogger("engine.test").info("served")
        assert "INFO engine.test [request=req-2]: served" in stream.getvalue()
    finally:
        root.setLevel(saved[0])
        for handler in list(root.handlers):
            if handler not in saved[1]:
                root.removeHandler(handler)
    with pytest.raises(ValueError, match="log_format"):
        logs.build_handler("xml")
    with pytest.raises(ValueError, match="log_format"):
        EngineSettings(log_format="xml")


def test_access_log_and_job_log_lines_carry_the_ids_the_client_sees(tmp_path, json_lines):
    jobs, _, _ = scripted_job_system(tmp_path)
    write_script(tmp_path / "objects" / "videos" / "ok.json", 2000, {1000: {"Weapons": 90}})
    write_script(tmp_path / "objects" / "videos" / "bad.json", 2000, fail="the stream is corrupt")
    jobs.start()
    try:
        client = TestClient(build_app(jobs.service), raise_server_exceptions=False)
        headers = {"Content-Type": "application/x-amz-json-1.1", "Authorization": AUTH}

        def call(operation, body):
            return client.post("/", content=json.dumps(body),
                               headers={**headers, "X-Amz-Target": TARGET + operation})

        started = call("StartContentModeration",
                       {"Video": {"S3Object": {"Bucket": "videos", "Name": "bad.json"}}})
        rejected = call("GetContentModeration", {"JobId": "x" * 65})
        assert jobs.executor.wait_idle(10)
    finally:
        jobs.stop()
    job_id = started.json()["JobId"]
    lines = json_lines()
    access = {line["request_id"]: line for line in lines if line["logger"] == "engine.access"}

    ok = access[started.headers["x-amzn-RequestId"]]
    assert (ok["operation"], ok["status"], ok["account"]) == ("StartContentModeration", 200, "AKIDLOGS")
    assert ok["latency_ms"] >= 0 and ok["error_code"] is None
    bad = access[rejected.headers["x-amzn-RequestId"]]
    assert (bad["status"], bad["error_code"]) == (400, "InvalidParameterException")
    assert len(access) == 2  # one line per API request

    failure = [line for line in lines if "failed" in line["message"] and line["job_id"] == job_id]
    assert failure and failure[0]["level"] == "WARNING"
    assert "the stream is corrupt" in failure[0]["message"]
