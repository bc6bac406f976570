"""Who is calling: the seam where SigV4 verification will plug in.

For now every request is accepted; the access key id is parsed from the Authorization header
(`AWS4-HMAC-SHA256 Credential=<AKID>/<date>/<region>/<service>/aws4_request, ...`) so jobs can be
bound to the account that started them. A later verifier implements `Authenticator` and raises
the contract's errors (AccessDeniedException / UnrecognizedClientException) itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

ANONYMOUS_ACCOUNT = "anonymous"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


@dataclass(frozen=True)
class Caller:
    """The authenticated principal; `account` scopes jobs and idempotency tokens."""

    access_key_id: str | None

    @property
    def account(self) -> str:
        return self.access_key_id or ANONYMOUS_ACCOUNT


class Authenticator(Protocol):
    def authenticate(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> Caller:
        """Return the caller or raise a contract error; must not read anything but its inputs."""
        ...


def parse_access_key_id(authorization: str | None) -> str | None:
    """The access key id of a SigV4 Authorization header, or None when there is none."""
    if not authorization:
        return None
    found = _CREDENTIAL.search(authorization)
    return found.group(1) if found else None


class AcceptAnyAuthenticator:
    """Accepts every request (no signature check yet) and reports its access key id."""

    def authenticate(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> Caller:
        return Caller(access_key_id=parse_access_key_id(headers.get("authorization")))
