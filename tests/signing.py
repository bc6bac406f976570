"""Sign raw HTTP requests the way boto3 does (botocore's SigV4Auth), at a chosen time.

For tests that talk to the API without a boto3 client (Starlette TestClient, raw httpx).
"""

from __future__ import annotations

import datetime
import json
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

TARGET_PREFIX = "RekognitionService."
CONTENT_TYPE = "application/x-amz-json-1.1"


def signed_headers(
    key_id: str,
    secret: str,
    body: bytes,
    operation: str | None = "GetContentModeration",
    host: str = "testserver",
    path: str = "/",
    at: datetime.datetime | None = None,
    region: str = "us-east-1",
    service: str = "rekognition",
    extra_headers: dict[str, str] | None = None,
) -> dict[str, str]:
    """The headers of a signed `POST <path>` with this body (signed at `at`, default now)."""
    headers = {"Content-Type": CONTENT_TYPE}
    if operation is not None:  # None: no X-Amz-Target header at all
        headers["X-Amz-Target"] = TARGET_PREFIX + operation
    headers.update(extra_headers or {})
    request = AWSRequest(method="POST", url=f"http://{host}{path}", data=body, headers=headers)
    signer = SigV4Auth(Credentials(key_id, secret), service, region)
    when = at or datetime.datetime.now(datetime.timezone.utc)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        signer.add_auth(request)
    return dict(request.headers.items())


def signed_post(client, key_id: str, secret: str, operation: str, document, **options):
    """POST a JSON document (or raw bytes) through a Starlette TestClient / httpx client."""
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    host = options.pop("host", "testserver")
    headers = signed_headers(key_id, secret, body, operation, host=host, **options)
    return client.post("/", content=body, headers=headers)
