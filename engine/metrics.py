"""Prometheus metrics of one server process, all named `modengine_*`, in a registry of its own.

Each server builds one `EngineMetrics` (never the process-wide default registry: tests run
several servers in one process) and passes it down: the API counts requests, latency and error
codes; the jobs layer counts job starts and ends, finished segments and classified frames. Two
things are read only when Prometheus scrapes, never kept in step: jobs by state (a query of the
job store) and the inference pool's batching figures, which live in Ray actors (asked with a
short timeout; a scrape never starts Ray). Rates such as segments/s and frames/s are
`rate(modengine_segments_completed_total[1m])` on the Prometheus side.

A leaf: knows nothing about HTTP, SQLite or Ray; what it reads at scrape time arrives as plain
callables (`watch_jobs`, `watch_inference`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

log = logging.getLogger(__name__)

INFERENCE_STATS_TIMEOUT_S = 2.0
"""How long a scrape waits for the inference actors' figures before reporting them as down."""
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

JobCounts = Callable[[], Mapping[str, int]]
InferenceStats = Callable[[float], Sequence[Mapping] | None]
"""Given a timeout in seconds: one stats dict per inference actor, or None when no pool runs."""


class EngineMetrics:
    """The metrics of one server; the methods are what the API and jobs layers call."""

    def __init__(
        self, decode_mode: str | None = None, hwaccel: str | None = None,
        decode_report: Mapping | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self._jobs_started = Counter(
            "modengine_jobs_started", "Job runs started by this process (a resumed job counts "
            "again).", registry=registry)
        self._jobs_finished = Counter(
            "modengine_jobs_finished", "Jobs this process finished, by final status.",
            ["status"], registry=registry)
        for status in ("SUCCEEDED", "FAILED"):  # present from the start, so rate() sees the first
            self._jobs_finished.labels(status=status)
        self._segments = Counter(
            "modengine_segments_completed", "Video segments decoded and classified.",
            registry=registry)
        self._frames = Counter(
            "modengine_frames_classified", "Sampled frames classified by the model.",
            registry=registry)
        self._errors = Counter(
            "modengine_errors", "Errors by source (api: error code returned to a client; job: "
            "kind of job failure) and type.", ["source", "type"], registry=registry)
        self._requests = Counter(
            "modengine_http_requests", "HTTP requests served, by operation and status.",
            ["operation", "status"], registry=registry)
        self._latency = Histogram(
            "modengine_http_request_duration_seconds", "Time to answer an HTTP request.",
            ["operation"], buckets=LATENCY_BUCKETS_S, registry=registry)
        if decode_mode is not None:
            labels = {"mode": decode_mode, "hwaccel": hwaccel or "none"}
            if decode_report is not None:  # what this machine's decoding actually does
                labels.update(
                    decoder=str(decode_report["decoder"]), scaler=str(decode_report["scaler"]),
                    nvdec_fallback=str(bool(decode_report["nvdec_fallback"])).lower())
            Info("modengine_decode", "Configured video decoding: sampling mode and hardware "
                 "acceleration; with the decode report, the decoder and scaler in use and "
                 "whether a visible GPU's NVDEC could not be used (nvdec_fallback).",
                 registry=registry).info(labels)

    @classmethod
    def for_settings(cls, settings, decode_report: Mapping | None = None) -> EngineMetrics:
        """Metrics labelled with an EngineSettings' decode mode and hwaccel (and, given
        `engine.video.decode_path_report`, what decoding does on this machine)."""
        return cls(decode_mode=settings.decode_mode, hwaccel=settings.hwaccel,
                   decode_report=decode_report)

    # -- what the layers report ------------------------------------------------------------

    def job_started(self) -> None:
        self._jobs_started.inc()

    def job_succeeded(self) -> None:
        self._jobs_finished.labels(status="SUCCEEDED").inc()

    def job_failed(self, kind: str) -> None:
        """A job ended FAILED; `kind` is a short, bounded failure class (video, cluster, ...)."""
        self._jobs_finished.labels(status="FAILED").inc()
        self._errors.labels(source="job", type=kind).inc()

    def segment_done(self, frames: int) -> None:
        self._segments.inc()
        self._frames.inc(frames)

    def request_served(
        self, operation: str, status: int, seconds: float, error_code: str | None = None
    ) -> None:
        self._requests.labels(operation=operation, status=str(status)).inc()
        self._latency.labels(operation=operation).observe(seconds)
        if error_code:
            self._errors.labels(source="api", type=error_code).inc()

    # -- what is read at scrape time ---------------------------------------------------------

    def watch_jobs(self, count_by_state: JobCounts) -> None:
        """Report `modengine_jobs{state}` from `count_by_state()` at every scrape."""
        self.registry.register(_JobStateCollector(count_by_state))

    def watch_inference(
        self, stats: InferenceStats, timeout_s: float = INFERENCE_STATS_TIMEOUT_S
    ) -> None:
        """Report the inference pool's batch sizes, queue depth and busy time at every scrape."""
        self.registry.register(_InferenceCollector(stats, timeout_s))

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text format and its content type. Blocks (store query, actor calls):
        call it from a worker thread, never on an event loop."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _JobStateCollector(Collector):
    def __init__(self, count_by_state: JobCounts) -> None:
        self._count_by_state = count_by_state

    def describe(self) -> list:
        return []  # nothing is read at registration; the families are built per scrape

    def collect(self) -> Iterator:
        try:
            counts = self._count_by_state()
        except Exception as error:  # noqa: BLE001 - a scrape reports what it can
            log.warning("metrics: could not count jobs by state: %s", error)
            return
        family = GaugeMetricFamily("modengine_jobs", "Jobs in the job store, by state.",
                                   labels=["state"])
        for state, count in sorted(counts.items()):
            family.add_metric([state], count)
        yield family


class _InferenceCollector(Collector):
    def __init__(self, stats: InferenceStats, timeout_s: float) -> None:
        self._stats = stats
        self._timeout_s = timeout_s

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator:
        up = GaugeMetricFamily(
            "modengine_inference_up", "1 when the inference actors answered this scrape, 0 when "
            "they did not in time or failed, absent before the first job starts the pool.")
        try:
            actors = self._stats(self._timeout_s)
        except Exception as error:  # noqa: BLE001 - timeouts, dead actors: report them as down
            log.warning("metrics: inference actors did not report: %s", error)
            up.add_metric([], 0)
            yield up
            return
        if actors is None:
            return
        up.add_metric([], 1)
        yield up
        yield from inference_families(actors)


def inference_families(actors: Sequence[Mapping]) -> Iterator:
    """Metric families from the actors' BatchingStats dicts (engine/cluster/batching.py)."""
    depth = GaugeMetricFamily("modengine_inference_queue_depth",
                              "Frames waiting in an inference actor's batching queue.",
                              labels=["actor"])
    busy = CounterMetricFamily("modengine_inference_busy_seconds",
                               "Time inference actors spent running model batches.",
                               labels=["actor"])
    sizes: dict[int, int] = {}
    frames = 0
    for position, stats in enumerate(actors):
        depth.add_metric([str(position)], stats.get("queued_frames", 0))
        busy.add_metric([str(position)], stats.get("busy_s", 0.0))
        for size, count in stats.get("batch_sizes", {}).items():
            sizes[int(size)] = sizes.get(int(size), 0) + int(count)
        frames += int(stats.get("frames", 0))
    histogram = HistogramMetricFamily(
        "modengine_inference_batch_size",
        "Frames per model batch, across the inference actors (since each actor started).")
    histogram.add_metric([], buckets=_cumulative_buckets(sizes), sum_value=frames)
    yield from (depth, busy, histogram)


def _cumulative_buckets(sizes: Mapping[int, int]) -> list[tuple[str, int]]:
    buckets = [
        (floatToGoString(bound), sum(count for size, count in sizes.items() if size <= bound))
        for bound in BATCH_SIZE_BUCKETS
    ]
    return buckets + [("+Inf", sum(sizes.values()))]
