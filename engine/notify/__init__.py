"""Completion messages: SNS-compatible publish and HTTP webhooks.

A leaf used by jobs: it receives plain values (topic, message) and reports attempts through a
callback; it knows nothing about job storage, Ray or the API.
"""

from engine.notify.message import completion_message, sns_http_envelope
from engine.notify.publisher import CompletionNotifier
from engine.notify.settings import NotifySettings, parse_webhooks
from engine.notify.signing import (
    SIGNING_CERT_PATH,
    NotificationSigner,
    load_or_create_signer,
    verify_notification,
)

__all__ = [
    "SIGNING_CERT_PATH",
    "CompletionNotifier",
    "NotificationSigner",
    "NotifySettings",
    "completion_message",
    "load_or_create_signer",
    "parse_webhooks",
    "sns_http_envelope",
    "verify_notification",
]
