"""Paging through boto3 returns exactly the full, independently computed result, in every order;
and a page of a 100,000-detection job is served fast."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest

from engine.api.wire import detection_to_wire
from engine.jobs import GetRequest, StartRequest
from engine.jobs.tokens import PageQuery
from engine.results import aggregate_segments, build_detections, sort_detections
from engine.results.types import AGGREGATIONS, SORT_ORDERS, FrameScores
from engine.storage.base import ObjectRef
from models.taxonomy import load_taxonomy
from tests.doubles.scripted_runner import synthetic_detections, write_script

pytestmark = pytest.mark.integration

LEAVES = [
    "Weapons",
    "Drinking",
    "Pills",
    "Smoking",
    "Middle Finger",
    "Corpses",
    "Kissing on the Lips",
    "Air Crash",
]
DURATION_MS = 400_000


def random_script(seed: int = 7) -> dict[int, dict[str, float]]:
    generator = random.Random(seed)
    labels = {}
    for timestamp_ms in range(0, DURATION_MS, 1000):
        chosen = {
            name: round(generator.uniform(50, 99.9), 3)
            for name in LEAVES
            if generator.random() < 0.5
        }
        if chosen:
            labels[timestamp_ms] = chosen
    return labels


def expected_results(script: dict[int, dict[str, float]]) -> dict[tuple[str, str], list[dict]]:
    """What the job must return, computed from the script without the server."""
    taxonomy = load_taxonomy()
    frames = []
    for timestamp_ms in range(0, DURATION_MS, 1000):
        confidences = np.zeros(len(taxonomy), dtype=np.float32)
        for name, confidence in script.get(timestamp_ms, {}).items():
            label = taxonomy.find(name)
            for index in [label.index, *(a.index for a in taxonomy.ancestors(label.index))]:
                confidences[index] = max(confidences[index], confidence)
        frames.append(FrameScores(timestamp_ms, confidences))
    by_time = build_detections(taxonomy, frames, 50.0)
    segments = aggregate_segments(by_time, 1000, [f.timestamp_ms for f in frames], DURATION_MS)
    return {
        (sort, aggregation): [
            detection_to_wire(d)
            for d in sort_detections(by_time if aggregation == "TIMESTAMPS" else segments, sort)
        ]
        for sort in SORT_ORDERS
        for aggregation in AGGREGATIONS
    }


def walk(client, job_id, max_results, sort_by, aggregate_by):
    items, token, pages = [], None, 0
    while True:
        members = {
            "JobId": job_id,
            "MaxResults": max_results,
            "SortBy": sort_by,
            "AggregateBy": aggregate_by,
        }
        if token:
            members["NextToken"] = token
        page = client.get_content_moderation(**members)
        pages += 1
        assert (
            page["JobStatus"] == "SUCCEEDED"
            and page["VideoMetadata"]["DurationMillis"] == DURATION_MS
        )
        assert page["GetRequestMetadata"] == {"SortBy": sort_by, "AggregateBy": aggregate_by}
        assert len(page["ModerationLabels"]) <= min(max_results, 1000)
        items.extend(page["ModerationLabels"])
        token = page.get("NextToken")
        if not token:
            return items, pages


@pytest.fixture(scope="module")
def big_job(scripted_api):
    script = random_script()
    write_script(scripted_api.objects_dir / "videos" / "busy.json", DURATION_MS, script)
    job_id = scripted_api.client.start_content_moderation(
        Video={"S3Object": {"Bucket": "videos", "Name": "busy.json"}}
    )["JobId"]
    assert scripted_api.jobs.executor.wait_idle(60)
    return job_id, expected_results(script)


@pytest.mark.parametrize("aggregate_by", AGGREGATIONS)
@pytest.mark.parametrize("sort_by", SORT_ORDERS)
def test_every_page_size_walks_the_same_sequence(scripted_api, big_job, sort_by, aggregate_by):
    job_id, expected = big_job
    reference = expected[(sort_by, aggregate_by)]
    if aggregate_by == "TIMESTAMPS":
        assert len(reference) > 2500
    for max_results in (7, 1000, 5000):
        items, pages = walk(scripted_api.client, job_id, max_results, sort_by, aggregate_by)
        assert items == reference, f"MaxResults={max_results}"
        assert pages == -(-len(reference) // min(max_results, 1000))


def test_a_page_of_a_100k_detection_job_is_served_fast(scripted_api):
    """Rows inserted straight through the jobs layer; timed at the service, without HTTP."""
    jobs = scripted_api.jobs
    write_script(scripted_api.objects_dir / "videos" / "rows.json", 1000)
    job_id, _ = jobs.store.create_job(
        "f" * 64, "x", StartRequest(ObjectRef("videos", "rows.json"), 50.0), "7.0", 100
    )
    jobs.store.mark_running(job_id)
    rows = synthetic_detections(100_000, seed=3)
    by_time, by_name = sort_detections(rows, "TIMESTAMP"), sort_detections(rows, "NAME")
    jobs.store.complete_job(
        job_id, {"TIMESTAMPS": by_time}, {"TIMESTAMPS": by_name}, retention_s=3600
    )

    service = jobs.service
    first = service.get_content_moderation("x", GetRequest(job_id, sort_by="NAME"))
    deep_token = service.tokens.issue(PageQuery(job_id, "NAME", "TIMESTAMPS"), 95_000)
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        page = service.get_content_moderation(
            "x", GetRequest(job_id, sort_by="NAME", next_token=deep_token)
        )
        timings.append(time.perf_counter() - started)
    assert len(first.detections) == 1000 and len(page.detections) == 1000
    assert detection_to_wire(page.detections[0]) == detection_to_wire(by_name[95_000])
    print(f"1000-item page at offset 95,000 of 100,000 (NAME order): {min(timings) * 1000:.1f} ms")
    assert min(timings) < 0.05, f"1000-item page took {min(timings) * 1000:.1f} ms"
