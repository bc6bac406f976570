"""`make demo` end to end: server, store, boto3 start, completion message, paged result."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.integration.api_fixtures import REPO_ROOT, entries_of, expected_entries, server_env
from tests.media import make_colour_video

pytestmark = [pytest.mark.integration, pytest.mark.ray, pytest.mark.slow]


def test_the_demo_prints_the_moderation_result(tmp_path):
    truth = make_colour_video(tmp_path / "demo.mp4", [("magenta", 2), ("white", 1), ("red", 1)])
    env = {**os.environ, **server_env(tmp_path / "data"), "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.demo",
            str(tmp_path / "demo.mp4"),
            "--data-dir",
            str(tmp_path / "data"),
            "--report",
            str(tmp_path / "report.html"),
        ],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        check=False,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    printed = json.loads(done.stdout)
    message = printed["CompletionMessage"]
    result = printed["GetContentModeration"]
    assert (
        message["Status"] == "SUCCEEDED"
        and message["JobId"] == result["JobId"]
        and message["JobTag"] == "demo"
    )
    assert message["Video"] == {"S3ObjectName": "demo.mp4", "S3Bucket": "demo"}
    assert result["JobStatus"] == "SUCCEEDED" and result["VideoMetadata"]["FrameWidth"] == 64
    assert entries_of(result["ModerationLabels"]) == expected_entries(truth)
    report = (tmp_path / "report.html").read_text(encoding="utf-8")  # fetched by a presigned GET
    assert result["JobId"] in report and "<svg" in report and "demo.mp4" in report
