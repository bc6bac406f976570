"""The API layer's knobs, read from EngineSettings in this one place.

The fields live on EngineSettings (engine/config.py) as `api_*`. Everything else in engine/api
receives an `ApiSettings`, never the whole settings object.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from engine.config import EngineSettings

CREDENTIALS_FILE = "credentials"
_ENGINE_DEFAULTS = {setting.name: setting.default for setting in fields(EngineSettings)}
"""The `api_*` defaults are EngineSettings' own: stated once, in engine/config.py."""
DEFAULT_MAX_BODY_BYTES = _ENGINE_DEFAULTS["api_max_body_bytes"]


@dataclass(frozen=True)
class ApiSettings:
    """Authentication, rate limits and request-size limits of the HTTP API."""

    auth_enabled: bool = _ENGINE_DEFAULTS["api_auth_enabled"]
    """Verify SigV4 on every request. Turn off only for local development."""

    credentials_file: Path | None = None
    """The generated shared-credentials file (default <data_dir>/credentials)."""

    extra_credentials_file: Path | None = None
    """More access keys / accounts, same INI format; None = only the generated file."""

    clock_skew_s: float = _ENGINE_DEFAULTS["api_clock_skew_s"]
    """Largest allowed difference between X-Amz-Date and the server clock (AWS: 15 min)."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Largest request body; larger ones are refused (413) before they are read."""

    start_rate_per_s: float = _ENGINE_DEFAULTS["api_start_rate_per_s"]
    """StartContentModeration calls per second per account (token refill); <= 0 = no limit."""

    start_burst: int = _ENGINE_DEFAULTS["api_start_burst"]
    """StartContentModeration calls an idle account may make at once."""

    get_rate_per_s: float = _ENGINE_DEFAULTS["api_get_rate_per_s"]
    """GetContentModeration calls per second per account; <= 0 = no limit."""

    get_burst: int = _ENGINE_DEFAULTS["api_get_burst"]
    """GetContentModeration calls an idle account may make at once."""

    detect_rate_per_s: float = _ENGINE_DEFAULTS["api_detect_rate_per_s"]
    """DetectModerationLabels calls per second per account; <= 0 = no limit."""

    detect_burst: int = _ENGINE_DEFAULTS["api_detect_burst"]
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
