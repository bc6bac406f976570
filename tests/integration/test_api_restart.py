"""SIGKILL the server mid-job and start it again: the job resumes its missing segments only and
ends with the same detections as an undisturbed run; no accepted job is lost."""

from __future__ import annotations

import re
import sqlite3
import time

import pytest

from engine.config import EngineSettings
from engine.server import put_object
from tests.integration.api_fixtures import (
    ServerProcess,
    entries_of,
    expected_entries,
    rekognition_client,
    server_env,
    wait_for_job,
)
from tests.media import make_colour_video

pytestmark = [pytest.mark.integration, pytest.mark.ray, pytest.mark.slow]

ORDERS = [(s, a) for s in ("TIMESTAMP", "NAME") for a in ("TIMESTAMPS", "SEGMENTS")]


def segment_progress(database, job_id) -> tuple[int, int, str]:
    """(segments done, segments planned, job state), read straight from the server's store."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
        done, total = connection.execute(
            "SELECT COALESCE(SUM(done), 0), COUNT(*) FROM segments WHERE job_id = ?", (job_id,)
        ).fetchone()
        (state,) = connection.execute(
            "SELECT state FROM jobs WHERE job_id = ?", (job_id,)
        ).fetchone()
    return done, total, state


def all_orders(client, job_id):
    results = {}
    for sort_by, aggregate_by in ORDERS:
        _, pages = wait_for_job(
            client, job_id, timeout_s=180, SortBy=sort_by, AggregateBy=aggregate_by
        )
        assert pages[-1]["JobStatus"] == "SUCCEEDED"
        results[(sort_by, aggregate_by)] = [d for page in pages for d in page["ModerationLabels"]]
    return results


def test_a_killed_server_resumes_its_jobs(tmp_path):
    data_dir = tmp_path / "data"
    colours = [(["red", "white", "blue", "green", "magenta"][i % 5], 2) for i in range(20)]
    truth = make_colour_video(tmp_path / "long.mp4", colours, size=(64, 48), gop_s=1.0)
    make_colour_video(tmp_path / "short.mp4", [("blue", 3)])
    settings = EngineSettings(data_dir=data_dir)
    assert put_object(settings, tmp_path / "long.mp4", "videos", "long.mp4") is None
    put_object(settings, tmp_path / "short.mp4", "videos", "short.mp4")
    env = server_env(data_dir, MODENGINE_SEGMENT_LENGTH_S="1")
    log_path = tmp_path / "server.log"

    first_life = ServerProcess(data_dir, env, [], log_path).start()
    try:
        client = rekognition_client(first_life.url)
        video = {"S3Object": {"Bucket": "videos", "Name": "long.mp4"}}
        interrupted = client.start_content_moderation(
            Video=video, ClientRequestToken="before-kill"
        )["JobId"]
        queued = client.start_content_moderation(
            Video={"S3Object": {"Bucket": "videos", "Name": "short.mp4"}}
        )["JobId"]
        deadline = time.monotonic() + 120
        while segment_progress(data_dir / "jobs.sqlite3", interrupted)[0] < 1:
            state = segment_progress(data_dir / "jobs.sqlite3", interrupted)[2]
            assert state in ("SUBMITTED", "RUNNING") and time.monotonic() < deadline, (
                first_life.log_tail()
            )
            time.sleep(0.02)
    finally:
        first_life.kill()
    done_at_kill, total, _ = segment_progress(data_dir / "jobs.sqlite3", interrupted)
    assert 1 <= done_at_kill < total, "the kill must land mid-job for this test to mean anything"

    second_life = ServerProcess(data_dir, env, [], log_path).start()
    try:
        client = rekognition_client(second_life.url)
        resumed = all_orders(client, interrupted)
        _, short_pages = wait_for_job(client, queued)
        assert short_pages[-1]["JobStatus"] == "SUCCEEDED", short_pages[-1].get(
            "StatusMessage"
        )  # not lost
        assert (
            client.start_content_moderation(Video=video, ClientRequestToken="before-kill")["JobId"]
            == interrupted
        )
        undisturbed = all_orders(client, client.start_content_moderation(Video=video)["JobId"])
    finally:
        second_life.stop()

    assert resumed == undisturbed
    assert entries_of(resumed[("TIMESTAMP", "TIMESTAMPS")]) == expected_entries(truth)
    runs = re.findall(rf"job {interrupted}: running (\d+) segment", log_path.read_text())
    assert [int(n) for n in runs] == [total, total - done_at_kill]
