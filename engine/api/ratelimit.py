"""Per-account request-rate limits: one token bucket per (account, operation).

A bucket holds up to `burst` tokens and refills at `rate_per_s`; each call takes one. An empty
bucket refuses the call with ProvisionedThroughputExceededException: in Rekognition that code
means "you went over your account's transactions-per-second limit", and boto3's retry modes
treat it as a throttling error (back off and retry). ThrottlingException stays reserved for the
service as a whole being overloaded. The clock is injectable so tests need not sleep.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from engine.errors import ProvisionedThroughputExceededException

MAX_TRACKED_BUCKETS = 10_000


@dataclass(frozen=True)
class RateLimit:
    rate_per_s: float
    """Tokens added per second; <= 0 means unlimited."""
    burst: int
    """Bucket capacity: calls an idle account may make at once."""

    @property
    def unlimited(self) -> bool:
        return self.rate_per_s <= 0


class TokenBucket:
    """Not thread-safe by itself; RateLimiter serialises access."""

    def __init__(self, limit: RateLimit, now_s: float) -> None:
        self.limit = limit
        self.tokens = float(limit.burst)
        self.updated_s = now_s

    def try_take(self, now_s: float) -> bool:
        elapsed_s = max(0.0, now_s - self.updated_s)
        self.tokens = min(float(self.limit.burst), self.tokens + elapsed_s * self.limit.rate_per_s)
        self.updated_s = now_s
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def seconds_until_token(self) -> float:
        return max(0.0, (1.0 - self.tokens) / self.limit.rate_per_s)


class RateLimiter:
    """Buckets per (account, operation); operations without a limit are never refused."""

    def __init__(
        self,
        limits: dict[str, RateLimit],
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = MAX_TRACKED_BUCKETS,
    ) -> None:
        self.limits = dict(limits)
        self._clock = clock
        self._max_buckets = max_buckets
        self._buckets: OrderedDict[tuple[str, str], TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, account: str, operation: str) -> None:
        """Take one token for this call or raise ProvisionedThroughputExceededException."""
        limit = self.limits.get(operation)
        if limit is None or limit.unlimited:
            return
        with self._lock:
            now_s = self._clock()
            bucket = self._bucket((account, operation), limit, now_s)
            if bucket.try_take(now_s):
                return
            wait_s = bucket.seconds_until_token()
        raise ProvisionedThroughputExceededException(
            f"Rate exceeded for {operation}: this account may make {limit.rate_per_s:g} calls "
            f"per second (bursts of {limit.burst}); retry in {wait_s:.2f} s"
        )

    def _bucket(self, key: tuple[str, str], limit: RateLimit, now_s: float) -> TokenBucket:
        """The key's bucket; the least recently used ones are forgotten (they were full anyway
        unless used within the last burst / rate seconds)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(limit, now_s)
            while len(self._buckets) > self._max_buckets:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket


def limiter_from_settings(api_settings, clock: Callable[[], float] = time.monotonic) -> RateLimiter:
    """Start, Get and DetectModerationLabels limits from ApiSettings (media analysis jobs take
    the Start and Get ones)."""
    return RateLimiter(
        {
            "StartContentModeration": RateLimit(
                api_settings.start_rate_per_s, api_settings.start_burst
            ),
            "GetContentModeration": RateLimit(api_settings.get_rate_per_s, api_settings.get_burst),
            "DetectModerationLabels": RateLimit(
                api_settings.detect_rate_per_s, api_settings.detect_burst
            ),
            # A media analysis job starts and is polled like a video job.
            "StartMediaAnalysisJob": RateLimit(
                api_settings.start_rate_per_s, api_settings.start_burst
            ),
            "GetMediaAnalysisJob": RateLimit(api_settings.get_rate_per_s, api_settings.get_burst),
        },
        clock=clock,
    )
