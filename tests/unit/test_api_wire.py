"""The wire protocol through Starlette's TestClient: routing, envelopes, status codes, request ids."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from engine.api import build_app
from tests.doubles.scripted_runner import scripted_job_system, write_script

TARGET = "RekognitionService."
AUTH = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/rekognition/aws4_request, SignedHeaders=host, Signature=0"


@pytest.fixture()
def wire(tmp_path):
    jobs, _, _ = scripted_job_system(tmp_path)
    write_script(tmp_path / "objects" / "videos" / "clip.json", 3000, {1000: {"Weapons": 90}})
    jobs.start()
    client = TestClient(build_app(jobs.service), raise_server_exceptions=False)
    yield client, jobs
    jobs.stop()


def call(client, operation, body, raw=None, authorization=AUTH):
    headers = {"X-Amz-Target": TARGET + operation, "Content-Type": "application/x-amz-json-1.1"}
    if authorization:
        headers["Authorization"] = authorization
    return client.post("/", content=raw if raw is not None else json.dumps(body), headers=headers)


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    assert response.headers["x-amzn-RequestId"]
    assert response.headers["content-type"].startswith("application/x-amz-json-1.1")
    document = response.json()
    assert document["__type"] == code
    assert document["Message"] and "Traceback" not in document["Message"]


def test_start_then_get_round_trip(wire):
    client, jobs = wire
    started = call(
        client,
        "StartContentModeration",
        {"Video": {"S3Object": {"Bucket": "videos", "Name": "clip.json"}}},
    )
    assert started.status_code == 200 and started.headers["x-amzn-RequestId"]
    job_id = started.json()["JobId"]
    assert len(job_id) == 64 and all(c in "0123456789abcdef" for c in job_id)
    assert jobs.executor.wait_idle(10)
    page = call(client, "GetContentModeration", {"JobId": job_id}).json()
    assert page["JobStatus"] == "SUCCEEDED"
    assert page["VideoMetadata"]["DurationMillis"] == 3000
    assert [(d["Timestamp"], d["ModerationLabel"]["Name"]) for d in page["ModerationLabels"]] == [
        (1000, "Violence"),
        (1000, "Weapons"),
    ]
    assert page["GetRequestMetadata"] == {"SortBy": "TIMESTAMP", "AggregateBy": "TIMESTAMPS"}
    assert page["Video"] == {"S3Object": {"Bucket": "videos", "Name": "clip.json"}}
    assert page["ModerationModelVersion"] == "7.0"
    assert "NextToken" not in page and "JobTag" not in page


def test_jobs_are_scoped_to_the_access_key_that_started_them(wire):
    client, _ = wire
    job_id = call(
        client,
        "StartContentModeration",
        {"Video": {"S3Object": {"Bucket": "videos", "Name": "clip.json"}}},
    ).json()["JobId"]
    other = AUTH.replace("AKIDEXAMPLE", "AKIDOTHER")
    assert_error(
        call(client, "GetContentModeration", {"JobId": job_id}, authorization=other),
        400,
        "ResourceNotFoundException",
    )


@pytest.mark.parametrize("target", ["RekognitionService.DetectLabels", "Nope", ""])
def test_unknown_operations_get_an_aws_error(wire, target):
    client, _ = wire
    response = client.post("/", content="{}", headers={"X-Amz-Target": target})
    assert_error(response, 400, "UnknownOperationException")


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b"[1, 2]", b"42"])
def test_malformed_bodies_are_client_errors(wire, raw):
    client, _ = wire
    response = call(client, "GetContentModeration", None, raw=raw)
    assert response.status_code == 400
    assert response.json()["__type"] in ("SerializationException", "InvalidParameterException")


def test_validation_errors_are_invalid_parameter(wire):
    client, _ = wire
    assert_error(
        call(client, "GetContentModeration", {"JobId": "x", "SortBy": "SIZE"}),
        400,
        "InvalidParameterException",
    )


def test_other_paths_and_methods_are_not_served(wire):
    client, _ = wire
    for response in (client.get("/"), client.get("/anything"), client.put("/x", content=b"{}")):
        assert_error(response, 404, "SerializationException")


def test_unexpected_exceptions_become_internal_server_error_without_a_trace(wire, monkeypatch):
    client, jobs = wire

    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(jobs.service, "get_content_moderation", explode)
    response = call(client, "GetContentModeration", {"JobId": "abc"})
    assert_error(response, 500, "InternalServerError")
    assert "secret internals" not in response.text


def test_max_results_above_1000_is_capped(wire):
    client, jobs = wire
    job_id = call(
        client,
        "StartContentModeration",
        {"Video": {"S3Object": {"Bucket": "videos", "Name": "clip.json"}}},
    ).json()["JobId"]
    jobs.executor.wait_idle(10)
    response = call(client, "GetContentModeration", {"JobId": job_id, "MaxResults": 1_000_000})
    assert response.status_code == 200 and len(response.json()["ModerationLabels"]) == 2
