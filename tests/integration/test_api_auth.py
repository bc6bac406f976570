"""Authentication, accounts and rate limits through real boto3 clients against a real server."""

from __future__ import annotations

import datetime
import logging
import os
import subprocess
import sys
import time
from unittest import mock

import boto3
import httpx
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from engine.api.keys import read_default_key
from engine.api.settings import ApiSettings
from tests.doubles.scripted_runner import write_script
from tests.integration.api_fixtures import (
    NO_RETRIES,
    REPO_ROOT,
    free_port,
    owned_bucket,
    rekognition_client,
    scripted_server,
    write_account_keys,
)

pytestmark = pytest.mark.integration

VIDEO = {"S3Object": {"Bucket": "videos", "Name": "clip.json"}}
OTHER_ACCOUNT = ("AKIAOTHERACCOUNT0001", "other-account-secret-0123456789")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("auth-api")
    more_keys = write_account_keys(data_dir / "more-keys", OTHER_ACCOUNT, "210987654321")
    api_settings = ApiSettings(
        extra_credentials_file=more_keys, get_rate_per_s=1000, get_burst=1000
    )
    write_script(data_dir / "objects" / "videos" / "clip.json", 3000, {1000: {"Weapons": 90.0}})
    write_script(owned_bucket(data_dir, "theirs", "210987654321") / "clip.json", 3000)
    with scripted_server(data_dir, api_settings) as (url, jobs, _):
        yield url, jobs, data_dir / "credentials"


def client_with(url, key_id, secret, config=NO_RETRIES):
    return rekognition_client(url, config=config, keys=(key_id, secret))


def error_of(call) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as raised:
        call()
    error = raised.value.response
    return (
        error["Error"]["Code"],
        error["ResponseMetadata"]["HTTPStatusCode"],
        error["Error"]["Message"],
    )


def test_boto3_pointed_at_the_generated_credentials_file_just_works(server, monkeypatch):
    url, jobs, credentials = server
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    client = boto3.Session().client(
        "rekognition", endpoint_url=url, region_name="eu-west-1", config=NO_RETRIES
    )
    job_id = client.start_content_moderation(Video=VIDEO)["JobId"]
    assert jobs.executor.wait_idle(10)
    assert client.get_content_moderation(JobId=job_id)["JobStatus"] == "SUCCEEDED"


def test_unsigned_requests_are_refused(server):
    url, _, _ = server
    client = boto3.client(
        "rekognition",
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1, "mode": "standard"}),
    )
    code, status, _ = error_of(lambda: client.get_content_moderation(JobId="a" * 64))
    assert (code, status) == ("MissingAuthenticationTokenException", 403)


def test_unknown_keys_are_unrecognized(server):
    url, _, _ = server
    client = client_with(url, "AKIANOSUCHKEY0000001", "whatever")
    code, status, message = error_of(lambda: client.get_content_moderation(JobId="a" * 64))
    assert (code, status) == ("UnrecognizedClientException", 403)
    assert message == "The security token included in the request is invalid."


def test_a_wrong_secret_is_an_invalid_signature(server):
    url, _, credentials = server
    key = read_default_key(credentials)
    client = client_with(url, key.access_key_id, key.secret_access_key[::-1])
    code, status, _ = error_of(lambda: client.start_content_moderation(Video=VIDEO))
    assert (code, status) == ("InvalidSignatureException", 403)


def test_a_20_minute_old_signature_has_expired(server):
    url, _, _ = server
    client = rekognition_client(url)
    stale = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
    with mock.patch("botocore.auth.get_current_datetime", return_value=stale):
        code, status, message = error_of(lambda: client.get_content_moderation(JobId="a" * 64))
    assert (code, status) == ("InvalidSignatureException", 403)
    assert message.startswith("Signature expired: ")


def test_another_account_cannot_see_or_page_the_job(server):
    url, jobs, _ = server
    mine = rekognition_client(url)
    theirs = client_with(url, *OTHER_ACCOUNT)
    job_id = mine.start_content_moderation(Video=VIDEO)["JobId"]
    assert jobs.executor.wait_idle(10)
    token = mine.get_content_moderation(JobId=job_id, MaxResults=1)["NextToken"]
    with pytest.raises(theirs.exceptions.ResourceNotFoundException):
        theirs.get_content_moderation(JobId=job_id)
    with pytest.raises(theirs.exceptions.ResourceNotFoundException):
        theirs.get_content_moderation(JobId=job_id, NextToken=token, MaxResults=1)
    assert mine.get_content_moderation(JobId=job_id, NextToken=token, MaxResults=1)[
        "ModerationLabels"
    ]
    own_job = theirs.start_content_moderation(
        Video={"S3Object": {"Bucket": "theirs", "Name": "clip.json"}})["JobId"]
    with pytest.raises(mine.exceptions.ResourceNotFoundException):
        mine.get_content_moderation(JobId=own_job)
    jobs.executor.wait_idle(10)


def test_secrets_never_reach_the_server_logs(server, caplog):
    url, _, credentials = server
    key = read_default_key(credentials)
    caplog.set_level(logging.DEBUG)
    stale = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2)
    attempts = [
        lambda: client_with(
            url, key.access_key_id, key.secret_access_key + "x"
        ).get_content_moderation(JobId="a"),
        lambda: client_with(
            url, key.secret_access_key, key.secret_access_key
        ).get_content_moderation(JobId="a"),
        lambda: client_with(url, *OTHER_ACCOUNT[:1], key.secret_access_key).get_content_moderation(
            JobId="a"
        ),
    ]
    for attempt in attempts:
        error_of(attempt)
    with mock.patch("botocore.auth.get_current_datetime", return_value=stale):
        error_of(
            lambda: rekognition_client(url).get_content_moderation(JobId="a")
        )
    server_records = [r for r in caplog.records if r.name.startswith(("engine", "uvicorn"))]
    assert server_records, "refusals are expected in the server log"
    server_text = "\n".join(r.getMessage() for r in server_records)
    for secret in (key.secret_access_key, OTHER_ACCOUNT[1]):
        assert secret not in server_text


def test_rate_limits_answer_provisioned_throughput_exceeded(tmp_path):
    limits = ApiSettings(get_rate_per_s=0.5, get_burst=3, start_rate_per_s=0.5, start_burst=2)
    with scripted_server(tmp_path, limits) as (url, _, _):
        client = rekognition_client(url)
        for _ in range(3):
            with pytest.raises(client.exceptions.ResourceNotFoundException):
                client.get_content_moderation(JobId="a" * 64)
        with pytest.raises(client.exceptions.ProvisionedThroughputExceededException):
            client.get_content_moderation(JobId="a" * 64)
        for _ in range(2):
            with pytest.raises(client.exceptions.InvalidS3ObjectException):
                client.start_content_moderation(Video={"S3Object": {"Bucket": "nope", "Name": "x"}})
        with pytest.raises(client.exceptions.ProvisionedThroughputExceededException):
            client.start_content_moderation(Video={"S3Object": {"Bucket": "nope", "Name": "x"}})


def test_modengine_serve_prints_where_the_credentials_are_but_not_the_secret(tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MODENGINE_DATA_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path),
        ],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    credentials = tmp_path / "credentials"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    key = read_default_key(credentials)
    assert f"AWS_SHARED_CREDENTIALS_FILE={credentials}" in output, output
    assert key.secret_access_key not in output
