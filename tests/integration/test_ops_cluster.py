"""GET /metrics of a server whose job really runs on Ray: PyAV decodes a generated H.264 video
in segment tasks and the colour test-double classifier batches frames in an inference actor.
The jobs layer's counters and the actors' batching figures (read at scrape time) both move, and
the output parses with prometheus_client's parser."""

from __future__ import annotations

import pytest

from engine.config import EngineSettings
from engine.server import build_server_app, put_object
from tests.integration.api_fixtures import in_process_server, rekognition_client, wait_for_job
from tests.integration.metrics_scrape import scrape, value
from tests.media import make_colour_video

pytestmark = [pytest.mark.integration, pytest.mark.ray]


def test_metrics_move_when_a_job_runs_on_ray(ray_session, test_double_model, tmp_path):
    settings = EngineSettings(
        data_dir=tmp_path / "data", model=test_double_model, segment_length_s=2,
        inference_actors=1, max_batch_size=4, hwaccel="none",
    )
    make_colour_video(tmp_path / "clip.mp4", [("red", 2), ("white", 1), ("blue", 2)])
    put_object(settings, tmp_path / "clip.mp4", "videos", "clip.mp4")
    app, jobs = build_server_app(settings, worker_count=2)
    with in_process_server(app) as url:
        before = scrape(url)
        assert "modengine_inference_up" not in before  # a scrape never starts Ray or the pool
        client = rekognition_client(url)
        job_id = client.start_content_moderation(
            Video={"S3Object": {"Bucket": "videos", "Name": "clip.mp4"}})["JobId"]
        _, pages = wait_for_job(client, job_id, timeout_s=180)
        assert pages[0]["JobStatus"] == "SUCCEEDED", pages[0].get("StatusMessage")
        after = scrape(url)
        planned = len(jobs.store.segment_rows(job_id))

    assert planned >= 2
    assert value(after, "modengine_jobs_started_total") == 1
    assert value(after, "modengine_jobs_finished_total", status="SUCCEEDED") == 1
    assert value(after, "modengine_jobs", state="SUCCEEDED") == 1
    assert value(after, "modengine_segments_completed_total") == planned
    assert value(after, "modengine_frames_classified_total") == 5  # 5 s, one sample a second
    assert value(after, "modengine_decode_info", mode="accurate", hwaccel="none") == 1
    # Read from the inference actor at scrape time.
    assert value(after, "modengine_inference_up") == 1
    batches = value(after, "modengine_inference_batch_size_count")
    assert batches >= 2  # 5 frames, at most 4 to a batch
    assert value(after, "modengine_inference_batch_size_sum") == 5
    assert value(after, "modengine_inference_batch_size_bucket", le="4.0") == batches
    assert value(after, "modengine_inference_queue_depth", actor="0") == 0
    assert value(after, "modengine_inference_busy_seconds_total", actor="0") > 0
