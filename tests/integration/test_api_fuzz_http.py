"""Malformed HTTP against a real uvicorn server on 127.0.0.1: every answer is a 4xx (never a 5xx
or a hang), bodies over the limit are refused before they are read, and the server keeps serving.
"""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from engine.api.keys import read_default_key
from engine.api.settings import ApiSettings
from tests.doubles.scripted_runner import write_script
from tests.integration.api_fixtures import rekognition_client, scripted_server
from tests.signing import signed_headers

pytestmark = pytest.mark.integration

MAX_BODY_BYTES = 64 * 1024
GET = "GetContentModeration"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("http-fuzz")
    write_script(data_dir / "objects" / "videos" / "clip.json", 3000, {1000: {"Weapons": 90.0}})
    limits = ApiSettings(max_body_bytes=MAX_BODY_BYTES)
    with scripted_server(data_dir, limits) as (url, jobs, _):
        key = read_default_key(data_dir / "credentials")
        yield url, jobs, (key.access_key_id, key.secret_access_key)


def host_of(url: str) -> str:
    return urlsplit(url).netloc


def signed_request(url, key, body: bytes, operation=GET, **headers) -> httpx.Response:
    signed = signed_headers(*key, body, operation, host=host_of(url), extra_headers=headers)
    return httpx.post(url + "/", content=body, headers=signed, timeout=10)


def raw_exchange(url: str, payload_parts: list[bytes], timeout_s: float = 10) -> bytes:
    """Send raw bytes (tolerating the server closing early) and read what comes back."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout_s) as connection:
        for part in payload_parts:
            try:
                connection.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
        received = b""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                chunk = connection.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
            if b"\r\n\r\n" in received and _complete(received):
                break
        return received


def _complete(received: bytes) -> bool:
    head, _, body = received.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False


def status_of(received: bytes) -> int:
    assert received.startswith(b"HTTP/1.1 "), received[:200]
    return int(received.split(b" ", 2)[1])


def assert_contract_error(response: httpx.Response, code: str | None = None, status: int = 400):
    assert response.status_code == status, response.text
    document = response.json()
    assert set(document) == {"__type", "Message"}
    if code:
        assert document["__type"] == code


def test_bad_json_is_a_serialization_error(server):
    url, _, key = server
    assert_contract_error(signed_request(url, key, b'{"JobId": '), "SerializationException")


def test_invalid_utf8_is_a_serialization_error(server):
    url, _, key = server
    assert_contract_error(
        signed_request(url, key, b'{"JobId": "\xff\xfe"}'), "SerializationException"
    )


def test_deeply_nested_json_is_a_client_error(server):
    url, _, key = server
    for body in (b"[" * 30_000 + b"]" * 30_000, b'{"JobId":' * 5_000 + b'"a"' + b"}" * 5_000):
        response = signed_request(url, key, body)
        assert response.status_code == 400 and response.json()["__type"] in (
            "SerializationException",
            "InvalidParameterException",
        )


def test_an_empty_body_is_a_missing_parameter(server):
    url, _, key = server
    assert_contract_error(signed_request(url, key, b""), "InvalidParameterException")


def test_the_content_type_is_not_what_decides(server):
    url, _, key = server
    body = json.dumps({"JobId": "a" * 64}).encode()
    response = signed_request(url, key, body, **{"Content-Type": "text/plain"})
    assert_contract_error(response, "ResourceNotFoundException")


def test_unknown_and_missing_targets_are_unknown_operations(server):
    url, _, key = server
    assert_contract_error(
        signed_request(url, key, b"{}", operation="DetectLabels"), "UnknownOperationException"
    )
    assert_contract_error(
        signed_request(url, key, b"{}", operation=None), "UnknownOperationException"
    )
    signed = signed_headers(*key, b"{}", GET, host=host_of(url))
    signed.pop("X-Amz-Target")  # removed after signing: the signature no longer matches
    response = httpx.post(url + "/", content=b"{}", headers=signed, timeout=10)
    assert_contract_error(response, "InvalidSignatureException", status=403)


@pytest.mark.parametrize(
    "method, path", [("GET", "/"), ("PUT", "/"), ("DELETE", "/x"), ("POST", "/x")]
)
def test_other_methods_and_paths_are_not_found(server, method, path):
    url, _, _ = server
    response = httpx.request(method, url + path, content=b"{}", timeout=10)
    assert_contract_error(response, "SerializationException", status=404)


def test_a_declared_huge_body_is_refused_before_it_is_sent(server):
    url, _, _ = server
    declared = 50 * 1024 * 1024
    head = (
        f"POST / HTTP/1.1\r\nHost: {host_of(url)}\r\nContent-Length: {declared}\r\n"
        "X-Amz-Target: RekognitionService.GetContentModeration\r\n"
        "Content-Type: application/x-amz-json-1.1\r\n\r\n"
    ).encode()
    started = time.monotonic()
    received = raw_exchange(url, [head, b"{" * 4096])
    assert status_of(received) == 413 and b"SerializationException" in received
    assert time.monotonic() - started < 5


def test_a_chunked_body_over_the_limit_is_cut_off(server):
    url, _, _ = server
    head = (
        f"POST / HTTP/1.1\r\nHost: {host_of(url)}\r\nTransfer-Encoding: chunked\r\n"
        "X-Amz-Target: RekognitionService.GetContentModeration\r\n\r\n"
    ).encode()
    chunk = b"4000\r\n" + b"a" * 0x4000 + b"\r\n"
    received = raw_exchange(url, [head] + [chunk] * 64 + [b"0\r\n\r\n"])
    assert status_of(received) == 413


@pytest.mark.parametrize(
    "garbage",
    [
        b"GARBAGE\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"POST / HTTP/9.9\r\n\r\n",
        b"\x00\xff\x13\x37" * 64 + b"\r\n\r\n",
    ],
)
def test_broken_http_gets_a_4xx(server, garbage):
    url, _, _ = server
    received = raw_exchange(url, [garbage], timeout_s=5)
    assert 400 <= status_of(received) < 500


def test_a_body_shorter_than_declared_does_not_wedge_the_server(server):
    url, _, _ = server
    head = (
        f"POST / HTTP/1.1\r\nHost: {host_of(url)}\r\nContent-Length: 100\r\n"
        "X-Amz-Target: RekognitionService.GetContentModeration\r\n\r\n{}"
    ).encode()
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as connection:
        connection.sendall(head)  # then hang up without the other 98 bytes


def test_the_server_still_answers_normal_requests_afterwards(server):
    url, jobs, _ = server
    client = rekognition_client(url)
    job_id = client.start_content_moderation(
        Video={"S3Object": {"Bucket": "videos", "Name": "clip.json"}}
    )["JobId"]
    assert jobs.executor.wait_idle(10)
    assert client.get_content_moderation(JobId=job_id)["JobStatus"] == "SUCCEEDED"
