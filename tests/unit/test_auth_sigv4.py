"""SigV4 verification through the ASGI app: accepted, refused with AWS's codes, accounts scoped."""

from __future__ import annotations

import datetime
import json
import logging

import pytest
from starlette.testclient import TestClient

from engine.api import build_app
from engine.api.keys import KeyRing, create_default_credentials, read_default_key
from engine.api.sigv4 import SigV4Authenticator
from tests.doubles.scripted_runner import scripted_job_system, write_script
from tests.signing import signed_headers, signed_post

START = "StartContentModeration"
GET = "GetContentModeration"
CLIP = {"Video": {"S3Object": {"Bucket": "videos", "Name": "clip.json"}}}
UTC = datetime.timezone.utc


@pytest.fixture()
def api(tmp_path):
    jobs, _, _ = scripted_job_system(tmp_path)
    write_script(tmp_path / "objects" / "videos" / "clip.json", 3000, {1000: {"Weapons": 90}})
    credentials = tmp_path / "credentials"
    create_default_credentials(credentials)
    with open(credentials, "a") as handle:  # a second key of the same account, and another account
        account = read_default_key(credentials).account
        handle.write(
            "\n[colleague]\naws_access_key_id = AKIACOLLEAGUE0000001\n"
            f"aws_secret_access_key = colleague-secret-0123456789\nmodengine_account = {account}\n"
            "\n[stranger]\naws_access_key_id = AKIASTRANGER00000001\n"
            "aws_secret_access_key = stranger-secret-0123456789\n"
        )
    jobs.start()
    app = build_app(jobs.service, authenticator=SigV4Authenticator(KeyRing([credentials])))
    client = TestClient(app, raise_server_exceptions=False)
    default = read_default_key(credentials)
    keys = {
        "default": (default.access_key_id, default.secret_access_key),
        "colleague": ("AKIACOLLEAGUE0000001", "colleague-secret-0123456789"),
        "stranger": ("AKIASTRANGER00000001", "stranger-secret-0123456789"),
    }
    yield client, keys, jobs, credentials
    jobs.stop()


def post(client, key, operation, document, **options):
    return signed_post(client, key[0], key[1], operation, document, **options)


def assert_error(response, status, code, message_part=""):
    assert response.status_code == status, response.text
    document = response.json()
    assert document["__type"] == code
    assert message_part in document["Message"]


def test_a_correctly_signed_request_is_served(api):
    client, keys, _, _ = api
    response = post(client, keys["default"], START, CLIP)
    assert response.status_code == 200, response.text
    assert len(response.json()["JobId"]) == 64


def test_missing_authorization_is_missing_authentication_token(api):
    client, _, _, _ = api
    response = client.post(
        "/", content=b"{}", headers={"X-Amz-Target": "RekognitionService." + GET}
    )
    assert_error(response, 403, "MissingAuthenticationTokenException")


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer abc",
        "AWS4-HMAC-SHA256 Credential=AKIAX/20260101/us-east-1/rekognition/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKIAX/20260101/aws4_request, SignedHeaders=host, Signature=ab",
        (
            "AWS4-HMAC-SHA256 Credential=AKIAX/20260101/us-east-1/rekognition/aws4_request, "
            "SignedHeaders=x-amz-date, Signature=ab"
        ),
        "AWS4-HMAC-SHA256",
    ],
)
def test_malformed_authorization_is_incomplete_signature(api, authorization):
    client, _, _, _ = api
    headers = {
        "X-Amz-Target": "RekognitionService." + GET,
        "Authorization": authorization,
        "X-Amz-Date": "20260101T000000Z",
    }
    assert_error(
        client.post("/", content=b"{}", headers=headers), 400, "IncompleteSignatureException"
    )


@pytest.mark.parametrize("amz_date", [None, "yesterday", "2026-01-01T00:00:00Z"])
def test_missing_or_unparseable_x_amz_date_is_incomplete_signature(api, amz_date):
    client, keys, _, _ = api
    headers = signed_headers(*keys["default"], b"{}", GET)
    headers.pop("X-Amz-Date")
    if amz_date:
        headers["X-Amz-Date"] = amz_date
    assert_error(
        client.post("/", content=b"{}", headers=headers), 400, "IncompleteSignatureException"
    )


def test_unknown_access_key_is_unrecognized_client(api):
    client, _, _, _ = api
    response = post(client, ("AKIANOBODY0000000000", "whatever-secret"), GET, {"JobId": "a"})
    assert_error(
        response,
        403,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )


def test_wrong_secret_is_invalid_signature(api):
    client, keys, _, _ = api
    key_id, _ = keys["default"]
    response = post(client, (key_id, "not-the-secret"), GET, {"JobId": "a"})
    assert_error(response, 403, "InvalidSignatureException", "does not match")


@pytest.mark.parametrize("tamper", ["body", "target", "date"])
def test_a_request_changed_after_signing_is_refused(api, tamper):
    client, keys, _, _ = api
    body = json.dumps({"JobId": "a" * 64}).encode()
    headers = signed_headers(*keys["default"], body, GET)
    if tamper == "body":
        body = json.dumps({"JobId": "b" * 64}).encode()
    elif tamper == "target":
        headers["X-Amz-Target"] = "RekognitionService." + START
    else:
        stamp = datetime.datetime.now(UTC) - datetime.timedelta(seconds=5)
        headers["X-Amz-Date"] = stamp.strftime("%Y%m%dT%H%M%SZ")
    assert_error(client.post("/", content=body, headers=headers), 403, "InvalidSignatureException")


def test_a_lying_payload_hash_header_is_refused(api):
    client, keys, _, _ = api
    body = b'{"JobId": "aaaa"}'
    headers = signed_headers(
        *keys["default"], body, GET, extra_headers={"X-Amz-Content-SHA256": "0" * 64}
    )
    assert_error(client.post("/", content=body, headers=headers), 403, "InvalidSignatureException")


def test_unsigned_headers_may_change(api):
    client, keys, _, _ = api
    body = json.dumps({"JobId": "a" * 64}).encode()
    headers = signed_headers(*keys["default"], body, GET)
    headers["User-Agent"] = "changed-by-a-proxy"
    assert_error(client.post("/", content=body, headers=headers), 400, "ResourceNotFoundException")


@pytest.mark.parametrize(
    "age, expected",
    [
        (datetime.timedelta(minutes=20), "Signature expired"),
        (datetime.timedelta(minutes=-20), "Signature not yet current"),
    ],
)
def test_signatures_outside_15_minutes_are_refused(api, age, expected):
    client, keys, _, _ = api
    at = datetime.datetime.now(UTC) - age
    response = post(client, keys["default"], GET, {"JobId": "a"}, at=at)
    assert_error(response, 403, "InvalidSignatureException", expected)


def test_signatures_within_15_minutes_are_accepted(api):
    client, keys, _, _ = api
    at = datetime.datetime.now(UTC) - datetime.timedelta(minutes=14)
    response = post(client, keys["default"], GET, {"JobId": "a"}, at=at)
    assert_error(response, 400, "ResourceNotFoundException")


def test_another_service_scope_is_refused(api):
    client, keys, _, _ = api
    response = post(client, keys["default"], GET, {"JobId": "a"}, service="s3")
    assert_error(response, 403, "InvalidSignatureException", "rekognition")


def test_jobs_belong_to_the_account_of_the_key(api):
    client, keys, jobs, _ = api
    job_id = post(client, keys["default"], START, CLIP).json()["JobId"]
    assert jobs.executor.wait_idle(10)
    assert (
        post(client, keys["colleague"], GET, {"JobId": job_id}).json()["JobStatus"] == "SUCCEEDED"
    )
    assert_error(
        post(client, keys["stranger"], GET, {"JobId": job_id}), 400, "ResourceNotFoundException"
    )


def test_next_tokens_work_only_for_the_account_that_owns_the_job(api):
    client, keys, jobs, _ = api
    job_id = post(client, keys["default"], START, CLIP).json()["JobId"]
    assert jobs.executor.wait_idle(10)
    first = post(client, keys["default"], GET, {"JobId": job_id, "MaxResults": 1}).json()
    token = first["NextToken"]
    assert (
        post(client, keys["colleague"], GET, {"JobId": job_id, "NextToken": token}).status_code
        == 200
    )
    assert_error(
        post(client, keys["stranger"], GET, {"JobId": job_id, "NextToken": token}),
        400,
        "ResourceNotFoundException",
    )


def test_client_request_tokens_are_scoped_to_the_account(api):
    client, keys, jobs, _ = api
    request = {**CLIP, "ClientRequestToken": "same-token"}
    mine = post(client, keys["default"], START, request).json()["JobId"]
    again = post(client, keys["colleague"], START, request).json()["JobId"]
    theirs = post(client, keys["stranger"], START, request).json()["JobId"]
    assert mine == again and theirs != mine
    jobs.executor.wait_idle(10)


def test_keys_added_to_the_file_work_without_a_restart(api):
    client, _, _, credentials = api
    new_key = ("AKIANEWCOMER00000001", "newcomer-secret-0123456789")
    assert_error(post(client, new_key, GET, {"JobId": "a"}), 403, "UnrecognizedClientException")
    with open(credentials, "a") as handle:
        handle.write(
            f"\n[newcomer]\naws_access_key_id = {new_key[0]}\naws_secret_access_key = {new_key[1]}\n"
        )
    assert_error(post(client, new_key, GET, {"JobId": "a"}), 400, "ResourceNotFoundException")


def test_secrets_never_reach_logs_or_responses(api, caplog):
    client, keys, _, _ = api
    key_id, secret = keys["default"]
    old = datetime.datetime.now(UTC) - datetime.timedelta(hours=1)
    caplog.set_level(logging.DEBUG)
    bad_requests = [
        post(client, (key_id, secret[:-1] + "!"), GET, {"JobId": "a"}),
        post(client, (key_id, secret), GET, {"JobId": "a"}, at=old),
        post(client, (key_id, secret), GET, {"JobId": "a"}, service="s3"),
        post(client, (secret, secret), GET, {"JobId": "a"}),
        post(client, (key_id, secret), GET, b"{not json"),
    ]
    assert all(response.status_code in (400, 403) for response in bad_requests)
    assert caplog.records, "the refusals were expected to be logged"
    for fragment in (secret, secret[:-1], keys["stranger"][1]):
        assert fragment not in caplog.text
        assert all(fragment not in response.text for response in bad_requests[:3])
