"""engine/metrics.py: what the layers count, what is read at scrape time, and that the output is
Prometheus text a real parser reads. No Ray, no server."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.cluster.batching import BatchingQueue
from engine.metrics import EngineMetrics


def scrape(metrics: EngineMetrics) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}} of one exposition, through the real parser."""
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_counters_move_and_registries_are_separate():
    first, second = EngineMetrics(decode_mode="accurate", hwaccel="auto"), EngineMetrics()
    first.job_started()
    first.segment_done(frames=20)
    first.segment_done(frames=5)
    first.job_succeeded()
    first.job_started()
    first.job_failed("video")
    first.request_served("StartContentModeration", 200, 0.012)
    first.request_served("GetContentModeration", 400, 0.003, "InvalidParameterException")

    seen = scrape(first)
    assert seen["modengine_jobs_started_total"][()] == 2
    assert seen["modengine_jobs_finished_total"] == {
        (("status", "SUCCEEDED"),): 1, (("status", "FAILED"),): 1}
    assert seen["modengine_segments_completed_total"][()] == 2
    assert seen["modengine_frames_classified_total"][()] == 25
    assert seen["modengine_errors_total"] == {
        (("source", "job"), ("type", "video")): 1,
        (("source", "api"), ("type", "InvalidParameterException")): 1,
    }
    assert seen["modengine_http_requests_total"][
        (("operation", "GetContentModeration"), ("status", "400"))] == 1
    assert seen["modengine_http_request_duration_seconds_count"][
        (("operation", "StartContentModeration"),)] == 1
    assert seen["modengine_decode_info"] == {(("hwaccel", "auto"), ("mode", "accurate")): 1}
    # A second server in the same process starts from zero: no shared default registry.
    assert scrape(second)["modengine_jobs_started_total"][()] == 0
    assert "modengine_decode_info" not in scrape(second)


def test_jobs_by_state_are_read_at_every_scrape():
    counts = {"SUBMITTED": 0, "RUNNING": 1, "SUCCEEDED": 3, "FAILED": 0}
    metrics = EngineMetrics()
    metrics.watch_jobs(lambda: counts)
    assert scrape(metrics)["modengine_jobs"][(("state", "SUCCEEDED"),)] == 3
    counts["SUCCEEDED"] = 4
    assert scrape(metrics)["modengine_jobs"][(("state", "SUCCEEDED"),)] == 4


def test_a_failing_job_store_leaves_the_rest_of_the_scrape_intact():
    def broken():
        raise RuntimeError("database is locked")

    metrics = EngineMetrics()
    metrics.watch_jobs(broken)
    metrics.job_started()
    seen = scrape(metrics)
    assert "modengine_jobs" not in seen
    assert seen["modengine_jobs_started_total"][()] == 1


def test_inference_figures_are_summed_over_actors_into_a_batch_size_histogram():
    actors = [
        {"frames": 40, "busy_s": 1.5, "queued_frames": 3, "batch_sizes": {16: 2, 8: 1}},
        {"frames": 17, "busy_s": 0.5, "queued_frames": 0, "batch_sizes": {16: 1, 1: 1}},
    ]
    asked = []
    metrics = EngineMetrics()
    metrics.watch_inference(lambda timeout_s: asked.append(timeout_s) or actors, timeout_s=0.5)
    seen = scrape(metrics)
    assert asked == [0.5]
    assert seen["modengine_inference_up"][()] == 1
    assert seen["modengine_inference_queue_depth"] == {(("actor", "0"),): 3, (("actor", "1"),): 0}
    assert seen["modengine_inference_busy_seconds_total"][(("actor", "0"),)] == 1.5
    buckets = {dict(labels)["le"]: value for labels, value in
               seen["modengine_inference_batch_size_bucket"].items()}
    assert (buckets["1.0"], buckets["8.0"], buckets["16.0"], buckets["+Inf"]) == (1, 2, 5, 5)
    assert seen["modengine_inference_batch_size_count"][()] == 5
    assert seen["modengine_inference_batch_size_sum"][()] == 57


@pytest.mark.parametrize("outcome", ["none", "timeout"])
def test_inference_before_the_pool_exists_or_when_it_does_not_answer(outcome):
    def stats(timeout_s):
        if outcome == "timeout":
            raise TimeoutError("GetTimeoutError: 2 s")

    metrics = EngineMetrics()
    metrics.watch_inference(stats)
    seen = scrape(metrics)
    if outcome == "none":
        assert "modengine_inference_up" not in seen
    else:
        assert seen["modengine_inference_up"][()] == 0
    assert "modengine_inference_batch_size_count" not in seen


def test_the_batching_queue_records_batch_sizes_and_queue_depth():
    """The figures InferenceActor.stats() reports come from the queue itself."""
    queue = BatchingQueue(lambda frames: np.zeros((len(frames), 2)), max_batch_size=4,
                          max_wait_s=0.01)

    async def run() -> int:
        frames = np.zeros((3, 2, 2, 3), dtype=np.uint8)
        pending = [asyncio.ensure_future(queue.submit(frames)) for _ in range(2)]
        await asyncio.sleep(0)
        depth = queue.queued_frames
        await asyncio.gather(*pending)
        return depth

    depth_while_queued = asyncio.run(run())
    assert depth_while_queued == 6
    assert queue.queued_frames == 0
    stats = queue.stats.as_dict()
    assert stats["batch_sizes"] == {4: 1, 2: 1}
    assert stats["frames"] == 6 and stats["batches"] == 2


def test_decode_info_names_the_decoder_in_use_and_an_nvdec_fallback():
    report = {"hwaccel": "auto", "decoder": "software", "scaler": "swscale",
              "nvdec_fallback": True, "reason": "a CUDA GPU is visible but ..."}
    metrics = EngineMetrics(decode_mode="accurate", hwaccel="auto", decode_report=report)
    assert scrape(metrics)["modengine_decode_info"] == {(
        ("decoder", "software"), ("hwaccel", "auto"), ("mode", "accurate"),
        ("nvdec_fallback", "true"), ("scaler", "swscale")): 1}
