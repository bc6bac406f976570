"""Wire authentication and rate limits from ApiSettings: what a server passes to build_app.

On first start this creates `<data-dir>/credentials` (a [default] key, mode 0600) so that
`AWS_SHARED_CREDENTIALS_FILE=<data-dir>/credentials` points boto3 at a working key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from engine.api.auth import AcceptAnyAuthenticator, Authenticator
from engine.api.keys import KeyRing, create_default_credentials
from engine.api.ratelimit import RateLimiter, limiter_from_settings
from engine.api.settings import CREDENTIALS_FILE, ApiSettings
from engine.api.sigv4 import SigV4Authenticator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiSecurity:
    authenticator: Authenticator
    rate_limiter: RateLimiter
    credentials_file: Path
    """The generated shared-credentials file clients of this server can use."""
    max_body_bytes: int


def open_api_security(api_settings: ApiSettings, data_dir: Path) -> ApiSecurity:
    """Create the default credentials if absent; build the verifier and the rate limiter.

    The credentials file is `api_settings.credentials_file`, else `<data_dir>/credentials`.
    """
    credentials_file = Path(api_settings.credentials_file or Path(data_dir) / CREDENTIALS_FILE)
    if create_default_credentials(credentials_file):
        log.info("created API credentials in %s", credentials_file)
    if api_settings.auth_enabled:
        paths = [credentials_file]
        if api_settings.extra_credentials_file:
            paths.append(Path(api_settings.extra_credentials_file))
        authenticator: Authenticator = SigV4Authenticator(
            KeyRing(paths), clock_skew_s=api_settings.clock_skew_s
        )
    else:
        log.warning("API authentication is DISABLED (api_auth_enabled=false): local use only")
        authenticator = AcceptAnyAuthenticator()
    return ApiSecurity(
        authenticator=authenticator,
        rate_limiter=limiter_from_settings(api_settings),
        credentials_file=credentials_file,
        max_body_bytes=api_settings.max_body_bytes,
    )
