"""Where completion messages go and how hard we try.

Built from EngineSettings fields when they exist (read with defaults, so the engine runs before
they are added): sns_endpoint, sns_region, sns_access_key, sns_secret_key, webhooks,
notify_max_attempts, notify_initial_backoff_s, notify_timeout_s, notify_signing_cert_url.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NotifySettings:
    sns_endpoint: str | None = None
    """SNS-compatible endpoint URL; None uses boto3's default (real AWS)."""
    sns_region: str = "us-east-1"
    """Region used when the topic ARN does not name one."""
    sns_access_key: str | None = field(default=None, repr=False)
    sns_secret_key: str | None = field(default=None, repr=False)
    webhooks: Mapping[str, str] = field(default_factory=dict)
    """Topic ARN -> URL: these topics are delivered by HTTP POST instead of SNS."""
    max_attempts: int = 5
    """Delivery attempts per message, >= 1."""
    initial_backoff_s: float = 0.5
    """Wait before the second attempt; doubles after each failure."""
    timeout_s: float = 10.0
    signing_cert_url: str | None = None
    """SigningCertURL of signed webhook deliveries (engine/notify/signing.py); None: the server
    derives it from where it listens (http://HOST:PORT/sns/signing-cert.pem)."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("notify max_attempts must be >= 1")

    @classmethod
    def from_engine_settings(cls, settings: Any) -> NotifySettings:
        return cls(
            sns_endpoint=settings.sns_endpoint,
            sns_region=settings.sns_region
            or settings.s3_region,
            sns_access_key=settings.sns_access_key,
            sns_secret_key=settings.sns_secret_key,
            webhooks=parse_webhooks(settings.webhooks),
            max_attempts=settings.notify_max_attempts,
            initial_backoff_s=settings.notify_initial_backoff_s,
            timeout_s=settings.notify_timeout_s,
            signing_cert_url=settings.notify_signing_cert_url,
        )


def parse_webhooks(raw: Mapping[str, str] | str | None) -> dict[str, str]:
    """Accept a mapping, a JSON object, or `ARN=URL,ARN=URL` (ARNs never contain '=')."""
    if not raw:
        return {}
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    text = raw.strip()
    if text.startswith("{"):
        return {str(k): str(v) for k, v in json.loads(text).items()}
    webhooks = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        arn, separator, url = pair.partition("=")
        if not separator or not url:
            raise ValueError(f"webhook entry {pair!r} is not ARN=URL")
        webhooks[arn.strip()] = url.strip()
    return webhooks
