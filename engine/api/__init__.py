"""AWS JSON 1.1 wire protocol: routing on X-Amz-Target, SigV4 authentication, per-account rate
limits, validation, error envelopes.

Knows nothing about Ray or PyAV; hands parsed requests to engine.jobs. engine/server.py shows the
wiring: ApiSettings.from_engine_settings -> open_api_security -> build_app.
"""

from engine.api.app import build_app
from engine.api.security import ApiSecurity, open_api_security
from engine.api.settings import ApiSettings

__all__ = ["ApiSecurity", "ApiSettings", "build_app", "open_api_security"]
