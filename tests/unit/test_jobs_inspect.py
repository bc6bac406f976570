"""`modengine jobs list/show` over a real job store holding a finished and a failed job, read
the way an operator would: through the CLI's main(argv), text and JSON."""

from __future__ import annotations

import json
import time

import pytest

from engine.cli import EXIT_NO_SUCH_JOB, main
from engine.jobs import JobState, NotificationChannel, StartRequest
from engine.jobs.inspection import format_duration, open_store, render_list
from engine.storage.base import ObjectRef
from tests.doubles.scripted_runner import scripted_job_system, write_script

TOPIC = "arn:aws:sns:us-east-1:123456789012:done"
ROLE = "arn:aws:iam::123456789012:role/r"


class RecordingNotifierDouble:
    def deliver(self, topic_arn, message, record_attempt):
        record_attempt("sns:" + topic_arn, 1, False, "connection refused")
        record_attempt("sns:" + topic_arn, 2, True, "MessageId m-1")


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    """A data directory whose store holds one SUCCEEDED and (created later) one FAILED job."""
    data_dir = tmp_path_factory.mktemp("inspect")
    jobs, _, _ = scripted_job_system(data_dir)
    objects = data_dir / "objects" / "videos"
    write_script(objects / "good.json", 10_000, {1000: {"Weapons": 90.0}, 5000: {"Pills": 70.0}})
    write_script(objects / "bad.json", 6000, fail="the stream is corrupt at 4.0 s")
    jobs.executor.notifier = RecordingNotifierDouble()
    jobs.start()
    try:
        good = jobs.service.start_content_moderation("acct", StartRequest(
            ObjectRef("videos", "good.json"), 60.0, client_request_token="tok-1",
            notification_channel=NotificationChannel(TOPIC, ROLE), job_tag="batch-7"))
        assert jobs.executor.wait_idle(10)
        time.sleep(0.01)  # distinct creation times: newest-first order is checkable
        bad = jobs.service.start_content_moderation(
            "acct", StartRequest(ObjectRef("videos", "bad.json"), 50.0))
        assert jobs.executor.wait_idle(10)
    finally:
        jobs.stop()
    return data_dir, good, bad


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_is_newest_first_with_progress_and_detections(store_dir, capsys):
    data_dir, good, bad = store_dir
    code, out, _ = run_cli(capsys, "jobs", "list", "--data-dir", str(data_dir), "--json")
    assert code == 0
    listed = json.loads(out)
    assert [job["job_id"] for job in listed] == [bad, good]
    failed, succeeded = listed
    assert (failed["state"], succeeded["state"]) == ("FAILED", "SUCCEEDED")
    assert succeeded["object"] == "s3://videos/good.json"
    assert (succeeded["segments_done"], succeeded["segments_total"]) == (3, 3)  # 4 s segments
    # Weapons at 1 s and Pills at 5 s, each with its ancestors (Violence; Drugs & Tobacco,
    # Products): 2 + 3 TIMESTAMPS rows.
    assert succeeded["detections"] == 5
    assert failed["detections"] == 0
    assert succeeded["duration_s"] >= 0 and succeeded["created"].endswith("+00:00")

    code, out, _ = run_cli(capsys, "jobs", "list", "--data-dir", str(data_dir))
    header, first, second = out.strip().splitlines()
    assert header.split()[:2] == ["JOB", "ID"]
    assert first.startswith(bad) and "FAILED" in first and "s3://videos/bad.json" in first
    assert second.startswith(good) and "3/3" in second


def test_list_filters_by_state_and_limits(store_dir, capsys):
    data_dir, good, bad = store_dir
    _, out, _ = run_cli(capsys, "jobs", "list", "--data-dir", str(data_dir), "--state",
                        "SUCCEEDED", "--json")
    assert [job["job_id"] for job in json.loads(out)] == [good]
    _, out, _ = run_cli(capsys, "jobs", "list", "--data-dir", str(data_dir), "--limit", "1",
                        "--json")
    assert [job["job_id"] for job in json.loads(out)] == [bad]
    _, out, _ = run_cli(capsys, "jobs", "list", "--data-dir", str(data_dir), "--state", "RUNNING")
    assert out.strip() == "no jobs"


def test_show_has_request_metadata_segments_and_notification_attempts(store_dir, capsys):
    data_dir, good, _ = store_dir
    code, out, _ = run_cli(capsys, "jobs", "show", good, "--data-dir", str(data_dir), "--json")
    assert code == 0
    details = json.loads(out)
    assert details["request"] == {
        "video": {"bucket": "videos", "key": "good.json", "version": None},
        "min_confidence": 60.0,
        "client_request_token": "tok-1",
        "notification_channel": {"sns_topic_arn": TOPIC, "role_arn": ROLE},
        "job_tag": "batch-7",
    }
    assert details["account"] == "acct" and details["status_message"] is None
    assert details["metadata"]["duration_ms"] == 10_000 and details["metadata"]["codec"] == "h264"
    assert [(s["index"], s["start_ms"], s["stop_ms"], s["done"], s["samples"])
            for s in details["segments"]] == [
        (0, 0, 4000, True, 4), (1, 4000, 8000, True, 4), (2, 8000, 10_000, True, 2)]
    assert [(a["attempt"], a["succeeded"], a["detail"]) for a in details["notification_attempts"]] \
        == [(1, False, "connection refused"), (2, True, "MessageId m-1")]
    assert details["finished"] is not None

    _, text, _ = run_cli(capsys, "jobs", "show", good, "--data-dir", str(data_dir))
    assert f"Job:             {good}" in text
    assert "Notification:    " + TOPIC in text
    assert "#1    " in text and "done" in text and "MessageId m-1" in text


def test_show_a_failed_job_gives_its_status_message(store_dir, capsys):
    data_dir, _, bad = store_dir
    _, out, _ = run_cli(capsys, "jobs", "show", bad, "--data-dir", str(data_dir), "--json")
    details = json.loads(out)
    assert details["state"] == "FAILED"
    assert details["status_message"] == "the stream is corrupt at 4.0 s"
    assert details["notification_attempts"] == []
    assert [s["done"] for s in details["segments"]] == [False, False]


def test_unknown_job_and_missing_store_are_clear_errors(store_dir, capsys, tmp_path):
    data_dir, _, _ = store_dir
    code, out, err = run_cli(capsys, "jobs", "show", "f" * 64, "--data-dir", str(data_dir))
    assert code == EXIT_NO_SUCH_JOB and out == "" and "no job ffff" in err
    code, _, err = run_cli(capsys, "jobs", "list", "--data-dir", str(tmp_path / "empty"))
    assert code == 2 and "no job store" in err
    assert not (tmp_path / "empty").exists()  # inspecting never creates a store


def test_store_queries_and_rendering_helpers(store_dir):
    data_dir, _, _ = store_dir
    store = open_store(data_dir)
    assert store.count_jobs_by_state() == {"SUBMITTED": 0, "RUNNING": 0, "SUCCEEDED": 1, "FAILED": 1}
    assert [job.state for job in store.list_jobs(JobState.FAILED)] == [JobState.FAILED]
    assert render_list([]) == "no jobs"
    assert [format_duration(s) for s in (4.25, 75, 3725)] == ["4.2s", "1m15s", "1h02m05s"]
