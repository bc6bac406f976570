"""Batch moderation between local folders on the session's Ray: a re-run skips what is done,
and a video replaced by another is moderated again (its result records size and mtime)."""

from __future__ import annotations

import json
import os

import pytest

from engine.batch import BatchRequest, run_batch
from engine.config import EngineSettings
from tests.integration.api_fixtures import TEST_DOUBLE_MODEL, entries_of, expected_entries
from tests.media import make_colour_video

pytestmark = [pytest.mark.integration, pytest.mark.ray]


def test_local_folders_resume_and_redo_a_replaced_video(tmp_path, ray_session):
    videos, results = tmp_path / "videos", tmp_path / "results"
    (videos / "day1").mkdir(parents=True)
    first = make_colour_video(videos / "day1" / "a.mp4", [("red", 2)])
    other = make_colour_video(videos / "b.mkv", [("green", 1), ("blue", 1)])
    settings = EngineSettings(data_dir=tmp_path / "data", model=TEST_DOUBLE_MODEL, segment_length_s=2)
    request = BatchRequest(str(videos), str(results))

    summary = run_batch(settings, request, report=lambda line: None)
    assert summary["Counts"]["Succeeded"] == 2
    result_a = json.loads((results / "day1" / "a.mp4.json").read_text())
    assert entries_of(result_a["ModerationLabels"]) == expected_entries(first)
    assert entries_of(json.loads((results / "b.mkv.json").read_text())["ModerationLabels"]) == (
        expected_entries(other))

    # Replace a.mp4 by a different video; b.mkv is untouched.
    replaced = make_colour_video(videos / "day1" / "a.mp4", [("magenta", 3)])
    stamp = (videos / "day1" / "a.mp4").stat()
    os.utime(videos / "day1" / "a.mp4", ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))
    b_written = (results / "b.mkv.json").stat().st_mtime_ns
    again = run_batch(settings, request, report=lambda line: None)
    statuses = {entry["Video"]: entry["Status"] for entry in again["Videos"]}
    assert statuses == {"day1/a.mp4": "SUCCEEDED", "b.mkv": "SKIPPED"}
    result_a = json.loads((results / "day1" / "a.mp4.json").read_text())
    assert entries_of(result_a["ModerationLabels"]) == expected_entries(replaced)
    assert (results / "b.mkv.json").stat().st_mtime_ns == b_written
