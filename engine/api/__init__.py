"""AWS JSON 1.1 wire protocol: routing on X-Amz-Target, validation, auth seam, error envelopes.

Knows nothing about Ray or PyAV; hands parsed requests to engine.jobs.
"""

from engine.api.app import build_app

__all__ = ["build_app"]
