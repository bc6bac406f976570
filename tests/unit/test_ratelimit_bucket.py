"""Per-account token buckets with a fake clock, and the typed error through the ASGI app."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from engine.api import build_app
from engine.api.ratelimit import RateLimit, RateLimiter, limiter_from_settings
from engine.api.settings import ApiSettings
from engine.errors import ProvisionedThroughputExceededException
from tests.doubles.scripted_runner import scripted_job_system

GET = "GetContentModeration"
START = "StartContentModeration"


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def allowed(limiter, account, operation, calls) -> int:
    count = 0
    for _ in range(calls):
        try:
            limiter.check(account, operation)
            count += 1
        except ProvisionedThroughputExceededException:
            pass
    return count


def test_a_burst_is_allowed_then_calls_refill_at_the_rate():
    clock = FakeClock()
    limiter = RateLimiter({GET: RateLimit(rate_per_s=2.0, burst=5)}, clock=clock)
    assert allowed(limiter, "a", GET, 10) == 5
    clock.now_s += 1.0
    assert allowed(limiter, "a", GET, 10) == 2
    clock.now_s += 0.25
    assert allowed(limiter, "a", GET, 10) == 0
    clock.now_s += 0.25
    assert allowed(limiter, "a", GET, 10) == 1
    clock.now_s += 3600
    assert allowed(limiter, "a", GET, 10) == 5  # refill is capped at the burst


def test_sustained_rate_matches_the_limit():
    clock = FakeClock()
    limiter = RateLimiter({START: RateLimit(rate_per_s=5.0, burst=20)}, clock=clock)
    total = 0
    for _ in range(1000):  # 10 s of attempts every 10 ms
        clock.now_s += 0.01
        total += allowed(limiter, "a", START, 1)
    assert total == 20 + 50 - 1 or total == 20 + 50


def test_accounts_and_operations_have_separate_buckets():
    clock = FakeClock()
    limiter = RateLimiter({GET: RateLimit(1.0, 2), START: RateLimit(1.0, 1)}, clock=clock)
    assert allowed(limiter, "a", GET, 5) == 2
    assert allowed(limiter, "b", GET, 5) == 2
    assert allowed(limiter, "a", START, 5) == 1


def test_unlimited_and_unknown_operations_are_never_refused():
    limiter = RateLimiter({GET: RateLimit(0, 1)}, clock=FakeClock())
    assert allowed(limiter, "a", GET, 1000) == 1000
    assert allowed(limiter, "a", "SomethingElse", 1000) == 1000


def test_the_error_says_the_limit_and_when_to_retry():
    limiter = RateLimiter({GET: RateLimit(4.0, 1)}, clock=FakeClock())
    limiter.check("a", GET)
    with pytest.raises(ProvisionedThroughputExceededException) as raised:
        limiter.check("a", GET)
    assert "4 calls per second" in raised.value.message and "0.25 s" in raised.value.message


def test_forgotten_buckets_are_bounded():
    limiter = RateLimiter({GET: RateLimit(1.0, 1)}, clock=FakeClock(), max_buckets=3)
    for account in "abcdef":
        limiter.check(account, GET)
    assert len(limiter._buckets) == 3


def test_settings_map_to_start_and_get_limits():
    limiter = limiter_from_settings(
        ApiSettings(start_rate_per_s=1, start_burst=2, get_rate_per_s=3, get_burst=4)
    )
    assert limiter.limits[START] == RateLimit(1, 2)
    assert limiter.limits[GET] == RateLimit(3, 4)


def test_the_app_answers_provisioned_throughput_exceeded(tmp_path):
    jobs, _, _ = scripted_job_system(tmp_path)
    clock = FakeClock()
    limiter = RateLimiter({GET: RateLimit(1.0, 2)}, clock=clock)
    client = TestClient(build_app(jobs.service, rate_limiter=limiter))
    headers = {
        "X-Amz-Target": "RekognitionService." + GET,
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDONE/20260101/us-east-1/rekognition/aws4_request",
    }
    body = json.dumps({"JobId": "a"})
    codes = [client.post("/", content=body, headers=headers).json()["__type"] for _ in range(3)]
    assert codes == [
        "ResourceNotFoundException",
        "ResourceNotFoundException",
        "ProvisionedThroughputExceededException",
    ]
    other = dict(headers, Authorization=headers["Authorization"].replace("AKIDONE", "AKIDTWO"))
    assert (
        client.post("/", content=body, headers=other).json()["__type"]
        == "ResourceNotFoundException"
    )
    clock.now_s += 1.0
    assert (
        client.post("/", content=body, headers=headers).json()["__type"]
        == "ResourceNotFoundException"
    )
