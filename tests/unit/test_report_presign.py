"""Query-string SigV4 (presigned GET links, for opening a report in a browser): what
SigV4Authenticator accepts and refuses, and the report route through the ASGI app."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest
from starlette.testclient import TestClient

from engine.api import build_app
from engine.api.auth import AcceptAnyAuthenticator
from engine.api.keys import KeyRing, create_default_credentials, read_default_key
from engine.api.sigv4 import SigV4Authenticator, presign_url
from engine.errors import (
    AccessDeniedException,
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    ResourceNotFoundException,
    UnrecognizedClientException,
)
from engine.report.page import CONTENT_SECURITY_POLICY
from tests.doubles.scripted_runner import scripted_job_system

UTC = datetime.timezone.utc
HOST = "127.0.0.1:8080"


@pytest.fixture()
def keys(tmp_path):
    credentials = tmp_path / "credentials"
    create_default_credentials(credentials)
    key = read_default_key(credentials)
    return SigV4Authenticator(KeyRing([credentials])), (key.access_key_id, key.secret_access_key), key


def presigned(key, path="/jobs/j1/report", at=None, expires_s=3600, host=HOST) -> str:
    with mock.patch("botocore.auth.get_current_datetime", return_value=at or _now()):
        return presign_url(f"http://{host}{path}", *key, expires_s=expires_s)


def target_of(url: str) -> str:
    return url.split(HOST, 1)[1]


def verify(authenticator, url: str, method="GET", host=HOST):
    return authenticator.authenticate(method, target_of(url), {"host": host}, b"")


def _now() -> datetime.datetime:
    return datetime.datetime.now(UTC)


def test_a_presigned_link_authenticates_its_account(keys):
    authenticator, key, record = keys
    caller = verify(authenticator, presigned(key, "/jobs/j1/report?unblurred=true"))
    assert caller.account == record.account


@pytest.mark.parametrize(
    "tamper",
    [
        lambda url: url.replace("/jobs/j1/", "/jobs/j2/"),
        lambda url: url.replace("X-Amz-Expires=3600", "X-Amz-Expires=7200"),
        lambda url: url.replace("/report?", "/report?unblurred=true&"),
    ],
)
def test_a_changed_link_is_refused(keys, tamper):
    authenticator, key, _ = keys
    with pytest.raises(InvalidSignatureException):
        verify(authenticator, tamper(presigned(key)))


def test_the_host_is_part_of_the_signature(keys):
    authenticator, key, _ = keys
    with pytest.raises(InvalidSignatureException):
        verify(authenticator, presigned(key), host="evil.example:8080")


def test_expired_and_future_links_are_refused(keys):
    authenticator, key, _ = keys
    old = _now() - datetime.timedelta(minutes=30)  # older than the header clock skew
    with pytest.raises(AccessDeniedException, match="expired"):
        verify(authenticator, presigned(key, at=old, expires_s=600))
    assert verify(authenticator, presigned(key, at=old, expires_s=3600))  # still valid
    later = _now() + datetime.timedelta(hours=1)
    with pytest.raises(InvalidSignatureException, match="not yet current"):
        verify(authenticator, presigned(key, at=later))


def test_unknown_keys_and_malformed_parameters_are_refused(keys):
    authenticator, key, _ = keys
    with pytest.raises(UnrecognizedClientException):
        verify(authenticator, presigned(("AKIANOBODY0000000001", "secret")))
    url = presigned(key)
    with pytest.raises(IncompleteSignatureException, match="X-Amz-Expires"):
        verify(authenticator, url.replace("X-Amz-Expires=3600", "X-Amz-Expires=forever"))
    with pytest.raises(IncompleteSignatureException, match="X-Amz-Date"):
        verify(authenticator, url.replace("X-Amz-Date=", "X-Amz-Nothing="))


def test_query_signatures_are_not_accepted_for_the_api_itself(keys):
    authenticator, key, _ = keys
    with pytest.raises(MissingAuthenticationTokenException):
        verify(authenticator, presigned(key, "/"), method="POST")


def test_accept_any_takes_the_account_from_the_query_credential(keys):
    _, key, _ = keys
    caller = AcceptAnyAuthenticator().authenticate("GET", target_of(presigned(key)), {}, b"")
    assert caller.access_key_id == key[0]


def test_report_route_through_the_app(tmp_path, keys):
    authenticator, key, record = keys
    jobs, _, _ = scripted_job_system(tmp_path)
    calls = []

    class ReportBuilderDouble:
        """Stands in for engine.report.JobReportBuilder, declaring the real page's policy."""

        content_security_policy = CONTENT_SECURITY_POLICY

        def for_account(self, account: str, job_id: str, unblurred: bool) -> str:
            calls.append((account, job_id, unblurred))
            if job_id != "mine":
                raise ResourceNotFoundException(f"No content moderation job with JobId {job_id!r}")
            return "<!DOCTYPE html><html><body>report</body></html>"

    app = build_app(
        jobs.service, authenticator=authenticator, report_builder=ReportBuilderDouble()
    )
    client = TestClient(app, base_url=f"http://{HOST}", raise_server_exceptions=False)

    response = client.get(target_of(presigned(key, "/jobs/mine/report?unblurred=true")))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert calls == [(record.account, "mine", True)]

    assert client.get("/jobs/mine/report").status_code == 403
    missing = client.get(target_of(presigned(key, "/jobs/theirs/report")))
    assert missing.status_code == 404
    assert missing.json()["__type"] == "ResourceNotFoundException"
    bad_flag = client.get(target_of(presigned(key, "/jobs/mine/report?unblurred=maybe")))
    assert bad_flag.status_code == 400
    assert bad_flag.json()["__type"] == "InvalidParameterException"

    without = build_app(jobs.service, authenticator=authenticator)
    assert TestClient(without).get("/jobs/mine/report").status_code == 404
