"""Batch moderation (engine.batch) on the session's Ray over a moto S3 bucket: five videos give
five results and a summary, a second run skips them all without touching the results, a broken
file fails alone with a readable message, and the detections equal the engine's own."""

from __future__ import annotations

import json

import pytest

from engine.batch import BatchRequest, run_batch
from engine.client import moderate_on_ray
from engine.config import EngineSettings
from engine.errors import InvalidS3ObjectException
from tests.integration.api_fixtures import (
    TEST_DOUBLE_MODEL,
    aws_client,
    entries_of,
    expected_entries,
    moto_server,
)
from tests.media import make_colour_video

pytestmark = [pytest.mark.integration, pytest.mark.ray]

SCENES = [
    [("red", 2), ("white", 1), ("blue", 2)],
    [("green", 3)],
    [("magenta", 1), ("black", 1), ("red", 1)],
    [("white", 2)],
    [("blue", 1), ("yellow", 2), ("green", 1)],
]


@pytest.fixture(scope="module")
def bucket(tmp_path_factory, ray_session):
    work = tmp_path_factory.mktemp("batch-s3")
    with moto_server() as endpoint:
        s3 = aws_client("s3", endpoint)
        s3.create_bucket(Bucket="media")
        truths = {}
        for number, scenes in enumerate(SCENES):
            name = f"clip{number}.mp4" if number < 4 else "nested/clip4.mov"
            path = work / name.replace("/", "_")
            truths[name] = make_colour_video(path, scenes, seed=number)
            s3.put_object(Bucket="media", Key=f"videos/{name}", Body=path.read_bytes())
        s3.put_object(Bucket="media", Key="videos/README.txt", Body=b"not a video")
        s3.put_object(Bucket="media", Key="incoming/ok.mp4", Body=(work / "clip1.mp4").read_bytes())
        s3.put_object(Bucket="media", Key="incoming/broken.mp4", Body=b"\x00garbage" * 200)
        settings = EngineSettings(
            data_dir=work / "data", model=TEST_DOUBLE_MODEL, segment_length_s=2,
            s3_endpoint=endpoint, s3_access_key="x", s3_secret_key="y",
        )
        yield {"s3": s3, "settings": settings, "truths": truths}


def result_objects(s3, prefix):
    listed = s3.list_objects_v2(Bucket="media", Prefix=prefix).get("Contents", [])
    return {item["Key"]: (item["ETag"], item["LastModified"]) for item in listed}


def read_json(s3, key):
    return json.loads(s3.get_object(Bucket="media", Key=key)["Body"].read())


def test_five_videos_then_a_rerun_that_skips_them_all(bucket):
    s3, settings = bucket["s3"], bucket["settings"]
    request = BatchRequest("s3://media/videos/", "s3://media/results/")
    lines = []
    summary = run_batch(settings, request, report=lines.append)
    assert summary["Counts"] == {"Videos": 5, "Succeeded": 5, "Skipped": 0, "Failed": 0, "NotVideos": 1}
    assert sum(line.startswith("[") and "SUCCEEDED" in line for line in lines) == 5
    written = result_objects(s3, "results/")
    assert sorted(written) == sorted(
        [f"results/{name}.json" for name in bucket["truths"]] + ["results/summary.json"])
    for name, truth in bucket["truths"].items():
        result = read_json(s3, f"results/{name}.json")
        assert result["JobStatus"] == "SUCCEEDED" and result["ModerationModelVersion"] == "7.0"
        assert result["VideoMetadata"]["DurationMillis"] == pytest.approx(truth.duration_ms, abs=50)
        assert entries_of(result["ModerationLabels"]) == expected_entries(truth), name
        assert result["Batch"]["Source"]["Uri"] == f"s3://media/videos/{name}"
    assert read_json(s3, "results/summary.json") == summary

    again = run_batch(settings, request, report=lines.append)
    assert again["Counts"] == {"Videos": 5, "Succeeded": 0, "Skipped": 5, "Failed": 0, "NotVideos": 1}
    assert {entry["Status"] for entry in again["Videos"]} == {"SKIPPED"}
    after = result_objects(s3, "results/")
    assert {k: v for k, v in after.items() if not k.endswith("summary.json")} == {
        k: v for k, v in written.items() if not k.endswith("summary.json")}


def test_a_broken_file_fails_alone_with_a_readable_message(bucket):
    s3, settings = bucket["s3"], bucket["settings"]
    summary = run_batch(settings, BatchRequest("s3://media/incoming", "s3://media/incoming-results/"),
                        report=lambda line: None)
    assert summary["Counts"]["Succeeded"] == 1 and summary["Counts"]["Failed"] == 1
    failed = next(entry for entry in summary["Videos"] if entry["Status"] == "FAILED")
    assert failed["Video"] == "broken.mp4"
    assert "broken.mp4 is not a video file FFmpeg can read" in failed["StatusMessage"]
    assert "Traceback" not in failed["StatusMessage"] and "X-Amz-Signature" not in failed["StatusMessage"]
    assert sorted(result_objects(s3, "incoming-results/")) == [
        "incoming-results/ok.mp4.json", "incoming-results/summary.json"]
    with pytest.raises(InvalidS3ObjectException, match="NoSuchBucket"):
        run_batch(settings, BatchRequest("s3://no-such-bucket/in/", "s3://media/x/"))


def test_batch_detections_equal_the_engines_for_the_same_video(bucket, tmp_path):
    """SEGMENTS + NAME through the batch and through the runner (engine.client on Ray)."""
    settings = bucket["settings"]
    request = BatchRequest("s3://media/videos/", str(tmp_path / "out"), min_confidence=60,
                           sort_by="NAME", aggregate_by="SEGMENTS")
    summary = run_batch(settings, request, report=lambda line: None)
    assert summary["Counts"]["Succeeded"] == 5  # a new request: nothing is skipped
    for name in ("clip0.mp4", "nested/clip4.mov"):
        batch = json.loads((tmp_path / "out" / f"{name}.json").read_text())
        engine = moderate_on_ray(f"s3://media/videos/{name}", settings, min_confidence=60,
                                 sort_by="NAME", aggregate_by="SEGMENTS")
        assert batch["ModerationLabels"] == engine["ModerationLabels"] != []
        assert batch["VideoMetadata"] == engine["VideoMetadata"]
