"""SigV4 verification of received requests against the configured access keys.

The expected signature is computed by botocore's own signer (`SigV4Auth`) over the request as
received: method, path, query, exactly the headers the client listed in SignedHeaders, the body's
SHA-256 and the client's X-Amz-Date; it is compared in constant time. Any region in the
credential scope is accepted (the server is one region); the service must be `rekognition`.

Refusals use AWS's codes and messages: no Authorization -> MissingAuthenticationToken, a
malformed one -> IncompleteSignature, an unknown key -> UnrecognizedClient, a wrong signature or
an X-Amz-Date outside the allowed skew -> InvalidSignature. Neither a secret nor a received
signature is ever logged or put in a message.

A GET without an Authorization header may instead carry the signature in its query string (a
presigned link, as botocore's SigV4QueryAuth makes with `presign_url`), so a browser can open
a report page: the same signature, its date, scope and X-Amz-Expires read from the query.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

from engine.api.auth import Caller
from engine.api.keys import KeyRing
from engine.errors import (
    AccessDeniedException,
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    ServiceError,
    UnrecognizedClientException,
)

log = logging.getLogger(__name__)

ALGORITHM = "AWS4-HMAC-SHA256"
SIGNING_NAME = "rekognition"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_HEX_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class SignedRequestParts:
    """What the Authorization header claims: the key, its scope, the headers and signature."""

    access_key_id: str
    scope_date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(authorization: str) -> SignedRequestParts:
    """Split `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`."""
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme != ALGORITHM:
        raise IncompleteSignatureException(f"Authorization header must use the {ALGORITHM} scheme")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, equals, value = part.strip().partition("=")
        if equals:
            fields[name] = value
    missing = [
        name for name in ("Credential", "SignedHeaders", "Signature") if not fields.get(name)
    ]
    if missing:
        raise IncompleteSignatureException(
            " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
        )
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not all(scope):
        raise IncompleteSignatureException(
            "Credential must be <AccessKeyId>/<YYYYMMDD>/<region>/<service>/aws4_request"
        )
    signed_headers = tuple(fields["SignedHeaders"].split(";"))
    if "host" not in signed_headers:
        raise IncompleteSignatureException("SignedHeaders must include 'host'")
    return SignedRequestParts(
        scope[0], scope[1], scope[2], scope[3], signed_headers, fields["Signature"]
    )


def parse_amz_date(value: str | None) -> datetime:
    if not value:
        raise IncompleteSignatureException(
            "Authorization header requires existence of a 'X-Amz-Date' header."
        )
    try:
        return datetime.strptime(value, AMZ_DATE_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise IncompleteSignatureException(
            "X-Amz-Date must be an ISO-8601 basic timestamp such as 20260101T000000Z"
        ) from None


class _ReceivedRequestSigner(SigV4Auth):
    """botocore's signer, told exactly which received headers were signed."""

    def __init__(self, credentials, region: str, signed: list[tuple[str, str]]) -> None:
        super().__init__(credentials, SIGNING_NAME, region)
        self._signed = signed

    def headers_to_sign(self, request):
        header_map = HTTPHeaders()
        for name, value in self._signed:
            header_map[name] = value
        return header_map


def expected_signature(
    secret_access_key: str,
    parts: SignedRequestParts,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    amz_date: str,
) -> str:
    """The signature the holder of `secret_access_key` would have sent for this request."""
    signed = [(name, _header_value(headers, name)) for name in parts.signed_headers]
    request = AWSRequest(method=method, url="http://received" + target, data=body)
    request.context["timestamp"] = amz_date
    credentials = Credentials(parts.access_key_id, secret_access_key)
    signer = _ReceivedRequestSigner(credentials, parts.region, signed)
    canonical_request = signer.canonical_request(request)
    return signer.signature(signer.string_to_sign(request, canonical_request), request)


def _header_value(headers: Mapping[str, str], name: str) -> str:
    getlist = getattr(headers, "getlist", None)
    values = getlist(name) if getlist else [headers[name]] if name in headers else []
    if not values:
        raise InvalidSignatureException(f"The signed header '{name}' is not in the request.")
    return ",".join(values)


class SigV4Authenticator:
    """Verifies SigV4 against a key ring; the caller's account comes from the key."""

    def __init__(self, keys: KeyRing, clock_skew_s: float = 900.0, clock=time.time) -> None:
        self.keys = keys
        self.clock_skew_s = clock_skew_s
        self._clock = clock

    def authenticate(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> Caller:
        try:
            return self._verify(method, path, headers, body)
        except ServiceError as error:
            log.info("refused a request: %s: %s", error.code, error.message)
            raise

    def _verify(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Caller:
        authorization = headers.get("authorization")
        if not authorization and method == "GET" and is_presigned(target):
            return self._verify_presigned(method, target, headers, body)
        if not authorization:
            raise MissingAuthenticationTokenException("Missing Authentication Token")
        parts = parse_authorization(authorization)
        amz_date_text = headers.get("x-amz-date")
        amz_date = parse_amz_date(amz_date_text)
        key = self.keys.find(parts.access_key_id)
        if key is None:
            raise UnrecognizedClientException(
                "The security token included in the request is invalid."
            )
        self._check_scope(parts, amz_date_text)
        self._check_clock(amz_date)
        self._check_body_hash(headers, body)
        expected = expected_signature(
            key.secret_access_key, parts, method, target, headers, body, amz_date_text
        )
        if not hmac.compare_digest(expected.encode(), parts.signature.encode()):
            raise InvalidSignatureException(
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method."
            )
        return Caller(access_key_id=key.access_key_id, account_id=key.account)

    def _verify_presigned(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Caller:
        """Query-string SigV4 (a presigned GET link a browser can open): the same signature
        over the request, with the X-Amz-* parameters in the query instead of headers."""
        presigned = parse_presigned_query(target)
        parts, amz_date_text = presigned.parts, presigned.amz_date
        amz_date = parse_amz_date(amz_date_text)
        key = self.keys.find(parts.access_key_id)
        if key is None:
            raise UnrecognizedClientException(
                "The security token included in the request is invalid."
            )
        _check_credential_scope(parts, amz_date_text, "X-Amz-Date")
        now = datetime.fromtimestamp(self._clock(), tz=timezone.utc).replace(microsecond=0)
        if amz_date > now + timedelta(seconds=self.clock_skew_s):
            raise InvalidSignatureException(
                f"Signature not yet current: {_amz(amz_date)} is still later than "
                f"{_amz(now + timedelta(seconds=self.clock_skew_s))}"
            )
        if now > amz_date + timedelta(seconds=presigned.expires_s):
            raise AccessDeniedException("Request has expired")
        expected = expected_signature(
            key.secret_access_key, parts, method, presigned.signed_target, headers, body,
            amz_date_text,
        )
        if not hmac.compare_digest(expected.encode(), parts.signature.encode()):
            raise InvalidSignatureException(
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method."
            )
        return Caller(access_key_id=key.access_key_id, account_id=key.account)

    @staticmethod
    def _check_scope(parts: SignedRequestParts, amz_date_text: str) -> None:
        _check_credential_scope(parts, amz_date_text, "ISO-8601 version of date from HTTP")
        if "x-amz-date" not in parts.signed_headers:
            raise InvalidSignatureException("SignedHeaders must include 'x-amz-date'")

    def _check_clock(self, amz_date: datetime) -> None:
        now = datetime.fromtimestamp(self._clock(), tz=timezone.utc).replace(microsecond=0)
        skew = timedelta(seconds=self.clock_skew_s)
        minutes = f"{self.clock_skew_s / 60:g} min."
        if amz_date < now - skew:
            raise InvalidSignatureException(
                f"Signature expired: {_amz(amz_date)} is now earlier than {_amz(now - skew)} "
                f"({_amz(now)} - {minutes})"
            )
        if amz_date > now + skew:
            raise InvalidSignatureException(
                f"Signature not yet current: {_amz(amz_date)} is still later than "
                f"{_amz(now + skew)} ({_amz(now)} + {minutes})"
            )

    @staticmethod
    def _check_body_hash(headers: Mapping[str, str], body: bytes) -> None:
        """botocore trusts X-Amz-Content-SHA256 when present; a verifier must not."""
        claimed = headers.get("x-amz-content-sha256")
        if claimed is not None and claimed != hashlib.sha256(body).hexdigest():
            raise InvalidSignatureException(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
            )


def _amz(moment: datetime) -> str:
    return moment.strftime(AMZ_DATE_FORMAT)


# -- query-string (presigned) SigV4 -------------------------------------------------------------

PRESIGN_SIGNATURE_PARAMETER = "X-Amz-Signature"
MAX_PRESIGN_EXPIRES_S = 7 * 24 * 3600
"""AWS's limit for a presigned URL's X-Amz-Expires (7 days)."""


@dataclass(frozen=True)
class PresignedQuery:
    """What a presigned URL's X-Amz-* parameters claim, and the target its signature covers."""

    parts: SignedRequestParts
    amz_date: str
    expires_s: int
    signed_target: str
    """The request target without the X-Amz-Signature parameter (what the client signed)."""


def is_presigned(target: str) -> bool:
    """Whether the request target carries a query-string signature."""
    _, _, query = target.partition("?")
    return any(
        pair.partition("=")[0] == PRESIGN_SIGNATURE_PARAMETER for pair in query.split("&")
    )


def parse_presigned_query(target: str) -> PresignedQuery:
    """Read the X-Amz-* parameters of a presigned request target (path?query, as received)."""
    path, _, query = target.partition("?")
    pairs = [pair.partition("=") for pair in query.split("&") if pair]
    values = {unquote(name): unquote(value) for name, _, value in pairs}
    required = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                "X-Amz-SignedHeaders", PRESIGN_SIGNATURE_PARAMETER)
    missing = [name for name in required if not values.get(name)]
    if missing:
        raise IncompleteSignatureException(
            "A presigned request requires the query parameters " + ", ".join(missing)
        )
    if values["X-Amz-Algorithm"] != ALGORITHM:
        raise IncompleteSignatureException(f"X-Amz-Algorithm must be {ALGORITHM}")
    expires = values["X-Amz-Expires"]
    if not expires.isdigit() or not 1 <= int(expires) <= MAX_PRESIGN_EXPIRES_S:
        raise IncompleteSignatureException(
            f"X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGN_EXPIRES_S}"
        )
    parts = parse_authorization(
        f"{ALGORITHM} Credential={values['X-Amz-Credential']}, "
        f"SignedHeaders={values['X-Amz-SignedHeaders']}, "
        f"Signature={values[PRESIGN_SIGNATURE_PARAMETER]}"
    )
    kept = "&".join(
        f"{name}={value}" if equals else name
        for name, equals, value in pairs
        if unquote(name) != PRESIGN_SIGNATURE_PARAMETER
    )
    return PresignedQuery(parts, values["X-Amz-Date"], int(expires), f"{path}?{kept}")


def _check_credential_scope(
    parts: SignedRequestParts, amz_date_text: str, date_source: str
) -> None:
    """The credential scope's date and service, and the signature's form: the checks a signed
    header and a presigned link share (`date_source` names where the date came from)."""
    if parts.scope_date != amz_date_text[:8]:
        raise InvalidSignatureException(
            f"Date in Credential scope does not match YYYYMMDD from {date_source}: "
            f"'{parts.scope_date}' != '{amz_date_text[:8]}'"
        )
    if parts.service != SIGNING_NAME:
        raise InvalidSignatureException(
            f"Credential should be scoped to correct service: '{SIGNING_NAME}'."
        )
    if not _HEX_SIGNATURE.match(parts.signature):
        raise InvalidSignatureException("Signature must be 64 lowercase hex characters")


def presign_url(
    url: str,
    access_key_id: str,
    secret_access_key: str,
    region: str = "us-east-1",
    expires_s: int = 3600,
) -> str:
    """A GET link to `url` (which may carry its own query) signed in its query string with
    botocore's SigV4QueryAuth, as SigV4Authenticator verifies it: for opening in a browser."""
    request = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(
        Credentials(access_key_id, secret_access_key), SIGNING_NAME, region, expires=expires_s
    ).add_auth(request)
    return request.url
