"""`modengine moderate` as a user runs it: a subprocess, real Ray, real video."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.media import make_colour_video

pytestmark = [pytest.mark.integration, pytest.mark.ray]


def run_cli(*args, env_extra=None, timeout=180):
    environment = dict(os.environ, MODENGINE_RAY_NUM_CPUS="2", MODENGINE_INFERENCE_ACTOR_CPUS="0")
    environment.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        capture_output=True, text=True, timeout=timeout, env=environment, check=False,
    )


@pytest.fixture(scope="module")
def colour_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "clip.mov"
    make_colour_video(path, [("white", 1.5), ("red", 2.0), ("green", 1.5)], size=(96, 64))
    return path


def test_json_output_is_get_content_moderation_shaped(colour_video, test_double_model, tmp_path):
    completed = run_cli(
        "moderate", str(colour_video), "--json", "--sort-by", "NAME", "--aggregate-by", "SEGMENTS",
        "--min-confidence", "60", "--data-dir", str(tmp_path), env_extra={"MODENGINE_MODEL": test_double_model},
    )
    assert completed.returncode == 0, completed.stderr
    response = json.loads(completed.stdout)
    assert response["JobStatus"] == "SUCCEEDED"
    assert response["GetRequestMetadata"] == {"SortBy": "NAME", "AggregateBy": "SEGMENTS"}
    assert response["ModerationModelVersion"] == "7.0"
    assert response["VideoMetadata"]["Format"] == "QuickTime / MOV"
    assert response["VideoMetadata"]["FrameWidth"] == 96
    names = [item["ModerationLabel"]["Name"] for item in response["ModerationLabels"]]
    assert names == ["Blood & Gore", "Gambling", "Gambling", "Graphic Violence", "Violence"]
    gore = response["ModerationLabels"][0]
    assert gore["StartTimestampMillis"] == 2000 and gore["EndTimestampMillis"] == 4000
    assert gore["DurationMillis"] == 2000


def test_table_output_lists_levels_and_parents(colour_video, test_double_model, tmp_path):
    completed = run_cli("moderate", str(colour_video), "--data-dir", str(tmp_path),
                        env_extra={"MODENGINE_MODEL": test_double_model})
    assert completed.returncode == 0, completed.stderr
    assert "Blood & Gore (Graphic Violence)" in completed.stdout
    assert "colour-test-double" in completed.stdout
    assert "Token authentication" not in completed.stderr  # Ray's start-up chatter stays quiet


def test_missing_model_is_reported_not_invented(colour_video, tmp_path):
    completed = run_cli("moderate", str(colour_video), "--data-dir", str(tmp_path),
                        env_extra={"MODENGINE_MODEL": "no_such_package.model:Factory"})
    assert completed.returncode == 3
    assert "no_such_package" in completed.stderr
    assert completed.stdout == ""


def test_a_file_that_is_not_a_video_fails_with_a_message(tmp_path, test_double_model):
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("this is a text file, not a video")
    completed = run_cli("moderate", str(bogus), "--data-dir", str(tmp_path),
                        env_extra={"MODENGINE_MODEL": test_double_model})
    assert completed.returncode == 4
    assert "cannot moderate" in completed.stderr and "Traceback" not in completed.stderr
