"""The API layer's knobs, read from EngineSettings in this one place.

The fields live on EngineSettings (engine/config.py) as `api_*`. Everything else in engine/api
receives an `ApiSettings`, never the whole settings object.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CREDENTIALS_FILE = "credentials"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ApiSettings:
    """Authentication, rate limits and request-size limits of the HTTP API."""

    auth_enabled: bool = True
    """Verify SigV4 on every request. Turn off only for local development."""

    credentials_file: Path | None = None
    """The generated shared-credentials file (default <data_dir>/credentials)."""

    extra_credentials_file: Path | None = None
    """More access keys / accounts, same INI format; None = only the generated file."""

    clock_skew_s: float = 900.0
    """Largest allowed difference between X-Amz-Date and the server clock (AWS: 15 min)."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Largest request body; larger ones are refused (413) before they are read."""

    start_rate_per_s: float = 20.0
    """StartContentModeration calls per second per account (token refill); <= 0 = no limit."""

    start_burst: int = 50
    """StartContentModeration calls an idle account may make at once."""

    get_rate_per_s: float = 500.0
    """GetContentModeration calls per second per account; <= 0 = no limit."""

    get_burst: int = 1000
    """GetContentModeration calls an idle account may make at once."""

    detect_rate_per_s: float = 50.0
    """DetectModerationLabels calls per second per account; <= 0 = no limit."""

    detect_burst: int = 100
    """DetectModerationLabels calls an idle account may make at once."""

    def __post_init__(self) -> None:
        if self.clock_skew_s <= 0:
            raise ValueError("api_clock_skew_s must be > 0")
        if self.max_body_bytes < 1024:
            raise ValueError("api_max_body_bytes must be >= 1024")
        if self.start_burst < 1 or self.get_burst < 1:
            raise ValueError("api_start_burst and api_get_burst must be >= 1")
        if self.detect_burst < 1:
            raise ValueError("api_detect_burst must be >= 1")

    @classmethod
    def from_engine_settings(cls, settings) -> ApiSettings:
        """The only place that reads the `api_*` fields of EngineSettings."""
        extra = settings.api_credentials_file
        return cls(
            auth_enabled=settings.api_auth_enabled,
            credentials_file=Path(settings.data_dir) / CREDENTIALS_FILE,
            extra_credentials_file=Path(extra) if extra else None,
            clock_skew_s=settings.api_clock_skew_s,
            max_body_bytes=settings.api_max_body_bytes,
            start_rate_per_s=settings.api_start_rate_per_s,
            start_burst=settings.api_start_burst,
            get_rate_per_s=settings.api_get_rate_per_s,
            get_burst=settings.api_get_burst,
            detect_rate_per_s=settings.api_detect_rate_per_s,
            detect_burst=settings.api_detect_burst,
        )
