"""No secret this suite's security scenarios create ever reaches a log line or the console.

One run through everything issue 16 added, with every logger at DEBUG and the process's own
stdout/stderr captured: keys created, listed, rotated and revoked with `modengine keys` while
a server runs; requests signed with good keys, a wrong secret, a revoked key; objects refused
and allowed on the embedded store and on S3 (moto, the server's S3 secret in its settings);
signed webhook deliveries, to a receiver that verifies them and to one that fails. Then every
secret (each access key secret the credentials file ever held, the S3 secret, the signing
key) is looked for in what was captured, and none is found.
"""

from __future__ import annotations

import logging

import pytest
from botocore.exceptions import ClientError

from engine.api.keys import read_credentials_file
from engine.cli import main
from engine.config import EngineSettings
from engine.demo import CompletionReceiver, start_server_thread
from engine.notify import SIGNING_CERT_PATH, NotifySettings
from engine.notify.signing import SIGNING_KEY_FILE
from engine.server import build_server_app
from tests.doubles.scripted_runner import ScriptedRunnerDouble, write_script
from tests.integration.api_fixtures import (
    LEGACY_TEST_KEY,
    ROLE_ARN,
    aws_client,
    free_port,
    register_server_credentials,
    rekognition_client,
)

pytestmark = pytest.mark.integration

S3_SECRET = "s3-secret-that-must-never-be-logged-0001"
TOPIC_VERIFIED = "arn:aws:sns:us-east-1:123456789012:verified"
TOPIC_FAILING = "arn:aws:sns:us-east-1:123456789012:failing"


def secrets_in(credentials) -> set[str]:
    """Every secret of the file but the test fixtures' own well-known one."""
    return {key.secret_access_key for key in read_credentials_file(credentials)} - {
        LEGACY_TEST_KEY[1]}


def call(client, **request):
    """One request; its error, if any, is expected (refusals are part of the scenario)."""
    try:
        return client.start_content_moderation(**request)
    except ClientError as error:
        return error.response["Error"]["Code"]


def test_no_created_secret_appears_in_any_log_line(tmp_path, caplog, capfd, moto_endpoint,
                                                   monkeypatch):
    caplog.set_level(logging.DEBUG)
    # The CLI sets the root level to WARNING each time it runs; keep everything at DEBUG, so
    # a secret logged at any level by any command is caught.
    monkeypatch.setattr("engine.cli.configure_logging", lambda *args, **kwargs: None)
    s3 = aws_client("s3", moto_endpoint)
    s3.create_bucket(Bucket="secrets-bucket")
    s3.put_object(Bucket="secrets-bucket", Key="clip.json", Body=b'{"duration_ms": 1000}')
    data_dir = tmp_path / "data"
    write_script(data_dir / "objects" / "videos" / "clip.json", 1000)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    verified = CompletionReceiver(trusted_cert_prefix=base + "/")
    notify = NotifySettings(
        webhooks={TOPIC_VERIFIED: verified.url, TOPIC_FAILING: "http://127.0.0.1:9/hook"},
        max_attempts=2, initial_backoff_s=0.01, timeout_s=1,
        signing_cert_url=base + SIGNING_CERT_PATH)
    runner = ScriptedRunnerDouble()
    created: set[str] = set()
    for settings in (EngineSettings(data_dir=data_dir),
                     EngineSettings(data_dir=tmp_path / "s3-data", s3_endpoint=moto_endpoint,
                                    s3_access_key="x", s3_secret_key=S3_SECRET)):
        app, jobs = build_server_app(settings, runner_factory=lambda: runner,
                                     notify_settings=notify)
        server, thread = start_server_thread(app, port)
        try:
            register_server_credentials(base, app.state.credentials_file)
            created |= exercise(base, settings.data_dir, jobs)
        finally:
            server.should_exit = True
            thread.join(timeout=20)
        created |= signing_key_lines(settings.data_dir)
    verified.close()
    assert verified.received and not verified.rejected
    created.add(S3_SECRET)
    captured = capfd.readouterr()
    logged = f"{caplog.text}\n{captured.out}\n{captured.err}"
    assert len(created) >= 8 and all(len(secret) >= 20 for secret in created)
    leaked = [secret[:4] + "..." for secret in created if secret in logged]
    assert leaked == [], f"secrets found in the logs: {leaked}"


def exercise(base: str, data_dir, jobs) -> set[str]:
    """Every issue-16 path once against the running server; returns the secrets it created."""
    credentials = data_dir / "credentials"

    def run(*argv: str) -> int:
        return main(["keys", *argv, "--data-dir", str(data_dir)])

    assert run("create", "--account", "456789012345", "--profile", "tenant") == 0
    seen = secrets_in(credentials)
    tenant = next(key for key in read_credentials_file(credentials) if key.profile == "tenant")
    assert run("list") == 0 and run("list", "--json") == 0
    theirs = rekognition_client(base, keys=(tenant.access_key_id, tenant.secret_access_key))
    mine = rekognition_client(base)
    wrong = rekognition_client(base, keys=(tenant.access_key_id, tenant.secret_access_key[::-1]))
    for bucket in ("videos", "secrets-bucket"):
        video = {"S3Object": {"Bucket": bucket, "Name": "clip.json"}}
        call(theirs, Video=video)  # refused: not the tenant's
        call(wrong, Video=video)  # refused: a wrong secret
        call(mine, Video=video, NotificationChannel={"SNSTopicArn": TOPIC_VERIFIED,
                                                     "RoleArn": ROLE_ARN})
        call(mine, Video=video, NotificationChannel={"SNSTopicArn": TOPIC_FAILING,
                                                     "RoleArn": ROLE_ARN})
    assert run("rotate", tenant.access_key_id, "--grace", "0") == 0
    seen |= secrets_in(credentials)
    call(theirs, Video={"S3Object": {"Bucket": "videos", "Name": "clip.json"}})  # rotated out
    assert run("revoke", tenant.access_key_id) == 0
    rotated = next(key for key in read_credentials_file(credentials) if key.profile == "tenant")
    assert run("revoke", rotated.access_key_id) == 0
    assert jobs.executor.wait_idle(30)
    return seen


def signing_key_lines(data_dir) -> set[str]:
    """Each base64 line of the notification signing key (a leak of any one would show)."""
    pem = (data_dir / SIGNING_KEY_FILE).read_text()
    return {line for line in pem.splitlines() if not line.startswith("-----") and len(line) >= 20}
