"""Acceptance: one video, one set of settings, four ways in: `modengine moderate --json`, the
notebook client (`engine.client.moderate`), batch (`python -m engine.batch`) and a server job
read through boto3 all return the same ModerationLabels and VideoMetadata, because all four
end in the one assembler (engine/results/assemble.py) and the one wire writer
(engine/api/wire.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from engine import client as notebook
from engine.config import EngineSettings
from engine.server import build_server_app, put_object
from tests.integration.api_fixtures import (
    TEST_DOUBLE_MODEL,
    in_process_server,
    rekognition_client,
    wait_for_job,
)
from tests.media import make_colour_video

pytestmark = [pytest.mark.integration, pytest.mark.ray]

MIN_CONFIDENCE = 60
SORT_BY, AGGREGATE_BY = "NAME", "SEGMENTS"
SEGMENT_LENGTH_S = 2
ENVIRONMENT = {
    "MODENGINE_MODEL": TEST_DOUBLE_MODEL,
    "MODENGINE_SEGMENT_LENGTH_S": str(SEGMENT_LENGTH_S),
    "MODENGINE_RAY_NUM_CPUS": "2",
    "MODENGINE_INFERENCE_ACTOR_CPUS": "0",
}


def settings_in(data_dir) -> EngineSettings:
    return EngineSettings(
        data_dir=data_dir, model=TEST_DOUBLE_MODEL, segment_length_s=SEGMENT_LENGTH_S,
        inference_actor_cpus=0,
    )


def run_module(*args, data_dir, timeout: float = 240) -> subprocess.CompletedProcess:
    environment = dict(os.environ, **ENVIRONMENT, MODENGINE_DATA_DIR=str(data_dir))
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout,
        env=environment, check=False,
    )


def by_cli(video, data_dir) -> dict:
    completed = run_module(
        "engine.cli", "moderate", str(video), "--json", "--min-confidence", str(MIN_CONFIDENCE),
        "--sort-by", SORT_BY, "--aggregate-by", AGGREGATE_BY, data_dir=data_dir,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout)


def by_client(video, data_dir) -> dict:
    try:
        return notebook.moderate(
            str(video), min_confidence=MIN_CONFIDENCE, sort_by=SORT_BY,
            aggregate_by=AGGREGATE_BY, settings=settings_in(data_dir),
        )
    finally:
        notebook.close()


def by_batch(videos_dir, results_dir, data_dir) -> dict:
    completed = run_module(
        "engine.batch", "--input", str(videos_dir), "--output", str(results_dir),
        "--min-confidence", str(MIN_CONFIDENCE), "--sort-by", SORT_BY,
        "--aggregate-by", AGGREGATE_BY, data_dir=data_dir,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads((results_dir / "clip.mp4.json").read_text())


def by_server_job(video, data_dir) -> dict:
    settings = settings_in(data_dir)
    put_object(settings, video, "videos", "clip.mp4")
    app, _ = build_server_app(settings, worker_count=1)
    with in_process_server(app) as url:
        client = rekognition_client(url)
        job_id = client.start_content_moderation(
            Video={"S3Object": {"Bucket": "videos", "Name": "clip.mp4"}},
            MinConfidence=MIN_CONFIDENCE,
        )["JobId"]
        _, pages = wait_for_job(
            client, job_id, timeout_s=180, SortBy=SORT_BY, AggregateBy=AGGREGATE_BY, MaxResults=4
        )
    return notebook.merge_pages(pages)


def test_cli_client_batch_and_server_return_the_same_result(tmp_path, ray_session):
    videos = tmp_path / "videos"
    videos.mkdir()
    video = videos / "clip.mp4"
    make_colour_video(
        video, [("red", 2.5), ("white", 1.2), ("green", 2.0), ("red", 1.5), ("magenta", 2.0)],
        size=(96, 64), gop_s=1.0,
    )

    answers = {
        "cli": by_cli(video, tmp_path / "cli"),
        "client": by_client(video, tmp_path / "client"),
        "batch": by_batch(videos, tmp_path / "results", tmp_path / "batch"),
        "server": by_server_job(video, tmp_path / "server"),
    }

    reference = answers["server"]
    assert reference["JobStatus"] == "SUCCEEDED"
    assert reference["GetRequestMetadata"] == {"SortBy": SORT_BY, "AggregateBy": AGGREGATE_BY}
    labels = reference["ModerationLabels"]
    assert len(labels) > 4  # more than one page of MaxResults=4, merged
    assert all("StartTimestampMillis" in item for item in labels)
    assert min(item["ModerationLabel"]["Confidence"] for item in labels) >= MIN_CONFIDENCE
    for path, answer in answers.items():
        assert answer["ModerationLabels"] == labels, path
        assert answer["VideoMetadata"] == reference["VideoMetadata"], path
        assert answer["GetRequestMetadata"] == reference["GetRequestMetadata"], path
        assert answer["ModerationModelVersion"] == reference["ModerationModelVersion"], path
