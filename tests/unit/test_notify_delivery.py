"""Completion messages: documented fields, SNS-style envelope, retries with backoff, settings."""

from __future__ import annotations

import json

import httpx
import pytest

from engine.notify import (
    CompletionNotifier,
    NotifySettings,
    completion_message,
    parse_webhooks,
    sns_http_envelope,
)

TOPIC = "arn:aws:sns:eu-west-1:123456789012:AmazonRekognitionDone"


def test_message_has_the_documented_fields():
    message = completion_message(
        "j" * 64, "SUCCEEDED", "videos", "a/clip.mp4", 1_700_000_000_123, job_tag="t1"
    )
    assert message == {
        "JobId": "j" * 64,
        "Status": "SUCCEEDED",
        "API": "StartContentModeration",
        "JobTag": "t1",
        "Timestamp": 1_700_000_000_123,
        "Video": {"S3ObjectName": "a/clip.mp4", "S3Bucket": "videos"},
    }
    assert "JobTag" not in completion_message("j", "FAILED", "b", "k", 1)


def test_envelope_is_an_sns_notification():
    envelope = sns_http_envelope(TOPIC, {"JobId": "x"}, message_id="m-1")
    assert (
        envelope["Type"] == "Notification"
        and envelope["TopicArn"] == TOPIC
        and envelope["MessageId"] == "m-1"
    )
    assert json.loads(envelope["Message"]) == {"JobId": "x"}
    assert envelope["Timestamp"].endswith("Z")


def test_webhook_delivery_retries_with_backoff_and_records_attempts(monkeypatch):
    statuses = iter([503, 500, 200])
    posted = []

    def fake_post(url, content, headers, timeout):
        posted.append((url, json.loads(content), headers))
        return httpx.Response(next(statuses), request=httpx.Request("POST", url))

    monkeypatch.setattr(httpx, "post", fake_post)
    sleeps, attempts = [], []
    notifier = CompletionNotifier(
        NotifySettings(
            webhooks={TOPIC: "http://hook.local/x"}, max_attempts=4, initial_backoff_s=0.25
        ),
        sleep=sleeps.append,
    )
    assert notifier.deliver(TOPIC, {"JobId": "x"}, lambda *a: attempts.append(a))
    assert sleeps == [0.25, 0.5]
    assert [a[1:3] for a in attempts] == [(1, False), (2, False), (3, True)]
    assert attempts[0][0] == "webhook:http://hook.local/x"
    _, envelope, headers = posted[-1]
    assert (
        headers["x-amz-sns-message-type"] == "Notification"
        and headers["x-amz-sns-topic-arn"] == TOPIC
    )
    assert json.loads(envelope["Message"]) == {"JobId": "x"}


def test_delivery_gives_up_after_max_attempts(monkeypatch):
    def refuse(url, content, headers, timeout):
        raise httpx.ConnectError("refused")

    monkeypatch.setattr(httpx, "post", refuse)
    attempts = []
    notifier = CompletionNotifier(
        NotifySettings(webhooks={TOPIC: "http://h"}, max_attempts=3), sleep=lambda s: None
    )
    assert not notifier.deliver(TOPIC, {}, lambda *a: attempts.append(a))
    assert len(attempts) == 3 and "ConnectError" in attempts[-1][3]


def test_webhook_settings_parse_from_text_or_mapping():
    assert parse_webhooks(
        f"{TOPIC}=http://a/x?y=1, arn:aws:sns:us-east-1:123456789012:b=http://b"
    ) == {
        TOPIC: "http://a/x?y=1",
        "arn:aws:sns:us-east-1:123456789012:b": "http://b",
    }
    assert parse_webhooks(json.dumps({TOPIC: "http://a"})) == {TOPIC: "http://a"}
    assert parse_webhooks(None) == {}
    with pytest.raises(ValueError):
        parse_webhooks("no-url-here")


def test_settings_come_from_the_engine_settings():
    from engine.config import EngineSettings

    built = NotifySettings.from_engine_settings(EngineSettings(
        sns_endpoint="http://127.0.0.1:5000", webhooks=f"{TOPIC}=http://a", notify_max_attempts=2
    ))
    assert built.sns_endpoint == "http://127.0.0.1:5000" and built.webhooks == {TOPIC: "http://a"}
    assert built.max_attempts == 2 and built.sns_region == "us-east-1"
