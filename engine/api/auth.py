"""Who is calling: the authenticator seam and the caller it yields.

`Authenticator` implementations: engine/api/sigv4.py (SigV4 against configured access keys, the
default of a server) and `AcceptAnyAuthenticator` below (no verification: local development and
wire tests), which takes the access key id from the Authorization header
(`AWS4-HMAC-SHA256 Credential=<AKID>/<date>/<region>/<service>/aws4_request, ...`) and uses it
as the account.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl

ANONYMOUS_ACCOUNT = "anonymous"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


@dataclass(frozen=True)
class Caller:
    """The authenticated principal; `account` scopes jobs, idempotency tokens and rate limits."""

    access_key_id: str | None
    account_id: str | None = None
    """The account the key belongs to; None = the key itself is the account."""

    @property
    def account(self) -> str:
        return self.account_id or self.access_key_id or ANONYMOUS_ACCOUNT


class Authenticator(Protocol):
    def authenticate(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> Caller:
        """Return the caller or raise a contract error; must not read anything but its inputs.

        `path` is the request target as received: the path, plus `?query` when there is one.
        """
        ...


def parse_access_key_id(authorization: str | None) -> str | None:
    """The access key id of a SigV4 Authorization header, or None when there is none."""
    if not authorization:
        return None
    found = _CREDENTIAL.search(authorization)
    return found.group(1) if found else None


class AcceptAnyAuthenticator:
    """Accepts every request without checking its signature and reports its access key id."""

    def authenticate(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> Caller:
        key_id = parse_access_key_id(headers.get("authorization")) or _query_access_key_id(path)
        return Caller(access_key_id=key_id)


def _query_access_key_id(target: str) -> str | None:
    """The access key id of a presigned URL's X-Amz-Credential parameter, if any."""
    _, _, query = target.partition("?")
    for name, value in parse_qsl(query):
        if name == "X-Amz-Credential":
            return value.split("/")[0] or None
    return None
