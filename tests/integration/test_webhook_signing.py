"""Signed webhook deliveries end to end: a server (scripted runner, no Ray) delivers a job's
completion message to the demo's verifying receiver, which fetches the certificate from the
server's SigningCertURL and accepts it; the same notification tampered with, or pointing at a
certificate elsewhere, is rejected (403) and never counted as received."""

from __future__ import annotations

import json

import httpx
import pytest

from engine.config import EngineSettings
from engine.demo import CompletionReceiver, start_server_thread
from engine.notify import SIGNING_CERT_PATH, NotifySettings
from engine.server import build_server_app
from tests.doubles.scripted_runner import ScriptedRunnerDouble, write_script
from tests.integration.api_fixtures import (
    ROLE_ARN,
    free_port,
    register_server_credentials,
    rekognition_client,
)

pytestmark = pytest.mark.integration

TOPIC = "arn:aws:sns:us-east-1:123456789012:signed-completions"


@pytest.fixture(scope="module")
def delivered(tmp_path_factory):
    """The server, the receiver, and the raw body of one delivered completion notification."""
    data_dir = tmp_path_factory.mktemp("signed-webhooks")
    write_script(data_dir / "objects" / "videos" / "clip.json", 2000, {1000: {"Weapons": 90.0}})
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    receiver = CompletionReceiver(trusted_cert_prefix=base + "/")
    notify = NotifySettings(webhooks={TOPIC: receiver.url}, max_attempts=1,
                            signing_cert_url=base + SIGNING_CERT_PATH)
    settings = EngineSettings(data_dir=data_dir)
    runner = ScriptedRunnerDouble(sample_interval_ms=settings.sample_interval_ms)
    app, _jobs = build_server_app(settings, runner_factory=lambda: runner, notify_settings=notify)
    server, thread = start_server_thread(app, port)
    register_server_credentials(base, app.state.credentials_file)
    try:
        job_id = rekognition_client(base).start_content_moderation(
            Video={"S3Object": {"Bucket": "videos", "Name": "clip.json"}},
            NotificationChannel={"SNSTopicArn": TOPIC, "RoleArn": ROLE_ARN})["JobId"]
        (message,) = receiver.wait_for(bool, timeout_s=30)
        yield base, receiver, job_id, message
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        receiver.close()


def test_our_signed_notification_is_accepted(delivered):
    base, receiver, job_id, message = delivered
    assert message["JobId"] == job_id and message["Status"] == "SUCCEEDED"
    (_, body), = receiver.received
    envelope = json.loads(body)
    assert envelope["SignatureVersion"] == "2" and envelope["Signature"]
    assert envelope["SigningCertURL"] == base + SIGNING_CERT_PATH
    assert receiver.rejected == []
    # The certificate is public: served without a signature.
    served = httpx.get(base + SIGNING_CERT_PATH)
    assert served.status_code == 200 and served.content.startswith(b"-----BEGIN CERTIFICATE")


@pytest.mark.parametrize("change", [
    lambda envelope: envelope.update(Message=envelope["Message"].replace("SUCCEEDED", "FAILED")),
    lambda envelope: envelope.update(TopicArn=envelope["TopicArn"] + "-other"),
    lambda envelope: envelope.update(SigningCertURL="http://127.0.0.2:1/forged.pem"),
    lambda envelope: envelope.update(Signature=""),
])
def test_a_tampered_notification_is_rejected(delivered, change):
    _, receiver, _, _ = delivered
    (_, body), = receiver.received[:1]
    envelope = json.loads(body)
    change(envelope)
    posted = httpx.post(receiver.url, content=json.dumps(envelope))
    assert posted.status_code == 403
    assert json.dumps(envelope).encode() in receiver.rejected
    assert len(receiver.received) == 1
