"""NextToken: opaque, tamper-proof page tokens bound to one job and one query.

A token is `<position>.<issued_s>.<mac>`, where the MAC is an HMAC-SHA256 (server secret kept in
the data directory) over the job id, SortBy, AggregateBy, position and issue time. Changing any
part, or presenting it for another job or another sort/aggregation, fails verification; so does
a token older than its lifetime. Tokens stay well under the contract's 255 characters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InvalidPaginationTokenException

SECRET_BYTES = 32
MAC_CHARS = 27  # 160 bits of the base64url-encoded SHA-256


@dataclass(frozen=True)
class PageQuery:
    job_id: str
    sort_by: str
    aggregate_by: str


def load_or_create_secret(path: Path) -> bytes:
    """Read the server secret, creating it once (atomically, mode 0600) if absent."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_bytes(SECRET_BYTES))
        try:
            os.link(temporary, path)  # fails if another process won the race: theirs is kept
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    secret = path.read_bytes()
    if len(secret) < SECRET_BYTES:
        raise RuntimeError(f"page token secret {path} is shorter than {SECRET_BYTES} bytes")
    return secret


class PageTokenCodec:
    """Issues and verifies NextTokens."""

    def __init__(self, secret: bytes, lifetime_s: float = 24 * 3600) -> None:
        self._secret = secret
        self.lifetime_s = lifetime_s

    def issue(self, query: PageQuery, position: int, issued_s: int | None = None) -> str:
        issued_s = int(time.time()) if issued_s is None else issued_s
        return f"{position}.{issued_s}.{self._mac(query, position, issued_s)}"

    def verify(self, query: PageQuery, token: str) -> int:
        """The position the token points at; InvalidPaginationTokenException if it is not ours."""
        parts = token.split(".")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            raise InvalidPaginationTokenException("NextToken is not a token this service issued")
        position, issued_s = int(parts[0]), int(parts[1])
        if not hmac.compare_digest(parts[2], self._mac(query, position, issued_s)):
            raise InvalidPaginationTokenException(
                "NextToken was not issued for this JobId, SortBy and AggregateBy, or was altered"
            )
        if time.time() - issued_s > self.lifetime_s:
            raise InvalidPaginationTokenException(
                "NextToken has expired; start again without a token"
            )
        return position

    def _mac(self, query: PageQuery, position: int, issued_s: int) -> str:
        message = (
            f"{query.job_id}|{query.sort_by}|{query.aggregate_by}|{position}|{issued_s}".encode()
        )
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode()[:MAC_CHARS]

    def page(self, items: list, query: PageQuery, max_results: int, next_token: str | None
             ) -> tuple[list, str | None]:
        """One page of a listing (projects, versions, media analysis jobs) and the token of
        the next, if any."""
        start = self.verify(query, next_token) if next_token else 0
        more = start + max_results < len(items)
        return (items[start : start + max_results],
                self.issue(query, start + max_results) if more else None)
