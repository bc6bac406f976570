"""Acceptance: a notebook-style script (notebook_client.py, a subprocess with its own local Ray)
calls engine.client.moderate on a video stored in a moto S3 bucket and gets the detections
that the server (in-process, real cluster runner on the session's Ray) returns through boto3
for the same video; the Client's start/wait/results and DataFrame path agree too."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from engine.client import Client, ModerationJobFailedError
from engine.config import EngineSettings
from engine.server import build_server_app
from tests.integration.api_fixtures import (
    REPO_ROOT,
    TEST_DOUBLE_MODEL,
    aws_client,
    entries_of,
    expected_entries,
    in_process_server,
    moto_server,
    rekognition_client,
    wait_for_job,
)
from tests.media import make_colour_video

pytestmark = [pytest.mark.integration, pytest.mark.ray]

SCRIPT = REPO_ROOT / "tests" / "integration" / "notebook_client.py"


@pytest.fixture(scope="module")
def served_bucket(tmp_path_factory, ray_session):
    work = tmp_path_factory.mktemp("notebook")
    with moto_server() as endpoint:
        s3 = aws_client("s3", endpoint)
        s3.create_bucket(Bucket="videos")
        truth = make_colour_video(work / "clip.mp4", [("red", 2), ("white", 1), ("green", 2)])
        s3.put_object(Bucket="videos", Key="shows/clip.mp4", Body=(work / "clip.mp4").read_bytes())
        s3.put_object(Bucket="videos", Key="shows/notes.mp4", Body=b"this is not a video")
        settings = EngineSettings(
            data_dir=work / "server", model=TEST_DOUBLE_MODEL, segment_length_s=2,
            s3_endpoint=endpoint, s3_access_key="x", s3_secret_key="y",
        )
        app, _ = build_server_app(settings, worker_count=2)
        with in_process_server(app) as url:
            yield {"url": url, "s3_endpoint": endpoint, "truth": truth, "work": work,
                   "credentials_file": app.state.credentials_file}


def server_labels(url: str, **members) -> list[dict]:
    client = rekognition_client(url)
    job_id = client.start_content_moderation(
        Video={"S3Object": {"Bucket": "videos", "Name": "shows/clip.mp4"}})["JobId"]
    _, pages = wait_for_job(client, job_id, timeout_s=120, **members)
    assert pages[-1]["JobStatus"] == "SUCCEEDED"
    return [item for page in pages for item in page["ModerationLabels"]]


def run_notebook(served) -> dict:
    env = {
        **os.environ,
        "MODENGINE_DATA_DIR": str(served["work"] / "notebook"),
        "MODENGINE_MODEL": TEST_DOUBLE_MODEL,
        "MODENGINE_SEGMENT_LENGTH_S": "2",
        "MODENGINE_RAY_NUM_CPUS": "2",
        "MODENGINE_S3_ENDPOINT": served["s3_endpoint"],
        "MODENGINE_S3_ACCESS_KEY": "x",
        "MODENGINE_S3_SECRET_KEY": "y",
        "AWS_SHARED_CREDENTIALS_FILE": str(served["credentials_file"]),
        "RAY_AUTH_MODE": "disabled",
    }
    env.pop("RAY_ADDRESS", None)
    finished = subprocess.run(
        [sys.executable, str(SCRIPT), "s3://videos/shows/clip.mp4", served["url"]],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert finished.returncode == 0, finished.stderr[-4000:]
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_notebook_moderate_equals_the_server(served_bucket):
    expected = server_labels(served_bucket["url"])
    assert entries_of(expected) == expected_entries(served_bucket["truth"])
    expected_segments = server_labels(served_bucket["url"], AggregateBy="SEGMENTS")

    printed = run_notebook(served_bucket)
    assert printed["ray"]["ModerationLabels"] == expected
    assert printed["ray"]["JobStatus"] == "SUCCEEDED"
    assert printed["ray"]["Video"] == {"S3Object": {"Bucket": "videos", "Name": "shows/clip.mp4"}}
    assert printed["endpoint"]["ModerationLabels"] == expected
    assert printed["endpoint"]["VideoMetadata"] == printed["ray"]["VideoMetadata"]
    many = printed["many"]
    assert many["s3://videos/shows/clip.mp4"] == expected
    assert many["s3://videos/none.mp4"] == "InvalidS3ObjectException"

    frame = printed["dataframe"]
    assert frame["status"] == "SUCCEEDED"
    assert frame["columns"] == ["Timestamp", "Name", "ParentName", "TaxonomyLevel", "Confidence",
                                "StartTimestampMillis", "EndTimestampMillis", "DurationMillis"]
    assert [(row["Timestamp"], row["Name"], row["StartTimestampMillis"], row["EndTimestampMillis"])
            for row in frame["rows"]] == [
        (item["Timestamp"], item["ModerationLabel"]["Name"], item["StartTimestampMillis"],
         item["EndTimestampMillis"]) for item in expected_segments]


def test_client_failed_job_raises_with_the_status_message(served_bucket):
    client = Client(served_bucket["url"], credentials_file=served_bucket["credentials_file"])
    job_id = client.start("s3://videos/shows/notes.mp4")
    with pytest.raises(ModerationJobFailedError) as failed:
        client.wait(job_id, timeout_s=120, poll_s=0.25)
    assert failed.value.job_id == job_id
    assert "notes.mp4" in failed.value.status_message
