"""Deliver a completion message: HTTP webhook for topics configured as such, else SNS Publish.

Each attempt is reported to a `record_attempt` callback (the jobs layer stores it in SQLite);
failures are retried with exponential backoff. Knows nothing about jobs, Ray or the API.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable

import boto3
import httpx
from botocore.config import Config

from engine.notify.message import sns_http_envelope
from engine.notify.settings import NotifySettings
from engine.notify.signing import NotificationSigner

log = logging.getLogger(__name__)

AttemptRecorder = Callable[[str, int, bool, str], None]
"""record_attempt(target, attempt_number, succeeded, detail)."""


def topic_region(topic_arn: str, default: str) -> str:
    parts = topic_arn.split(":")
    return parts[3] if len(parts) > 5 and parts[3] else default


class CompletionNotifier:
    """Publishes completion messages with retries; safe to call from several threads. With a
    `signer`, webhook deliveries are signed as SNS signs them (SignatureVersion 2)."""

    def __init__(
        self, settings: NotifySettings, sleep: Callable[[float], None] = time.sleep,
        signer: NotificationSigner | None = None,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._signer = signer

    def deliver(self, topic_arn: str, message: dict, record_attempt: AttemptRecorder) -> bool:
        """Try up to max_attempts times; True once delivered, False when every attempt failed."""
        webhook = self.settings.webhooks.get(topic_arn)
        target = f"webhook:{webhook}" if webhook else f"sns:{topic_arn}"
        send = (
            (lambda: self._post_webhook(webhook, topic_arn, message))
            if webhook
            else (lambda: self._publish_sns(topic_arn, message))
        )
        backoff_s = self.settings.initial_backoff_s
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                detail = send()
            except Exception as error:  # noqa: BLE001 - every failure is retried and recorded
                detail = f"{type(error).__name__}: {error}"
                record_attempt(target, attempt, False, detail)
                log.warning("notification to %s failed (attempt %d): %s", target, attempt, detail)
                if attempt < self.settings.max_attempts:
                    self._sleep(backoff_s)
                    backoff_s *= 2
                continue
            record_attempt(target, attempt, True, detail)
            return True
        return False

    def _post_webhook(self, url: str, topic_arn: str, message: dict) -> str:
        message_id = str(uuid.uuid4())
        envelope = sns_http_envelope(topic_arn, message, message_id)
        if self._signer is not None:
            envelope = self._signer.sign(envelope)
        response = httpx.post(
            url,
            content=json.dumps(envelope),
            headers={
                "Content-Type": "text/plain; charset=UTF-8",
                "x-amz-sns-message-type": "Notification",
                "x-amz-sns-message-id": message_id,
                "x-amz-sns-topic-arn": topic_arn,
            },
            timeout=self.settings.timeout_s,
        )
        response.raise_for_status()
        return f"HTTP {response.status_code}"

    def _publish_sns(self, topic_arn: str, message: dict) -> str:
        client = boto3.client(
            "sns",
            endpoint_url=self.settings.sns_endpoint,
            region_name=topic_region(topic_arn, self.settings.sns_region),
            aws_access_key_id=self.settings.sns_access_key,
            aws_secret_access_key=self.settings.sns_secret_key,
            config=Config(
                connect_timeout=self.settings.timeout_s,
                read_timeout=self.settings.timeout_s,
                retries={"max_attempts": 1},
            ),
        )
        reply = client.publish(
            TopicArn=topic_arn, Message=json.dumps(message, separators=(",", ":"))
        )
        return f"MessageId {reply.get('MessageId')}"
