"""Jobs end to end over the scripted runner double: success, failures, resume, start checks."""

from __future__ import annotations

import pytest

from engine.api.wire import detection_to_wire
from engine.errors import (
    InvalidS3ObjectException,
    ResourceNotFoundException,
    VideoTooLargeException,
)
from engine.jobs import GetRequest, JobState, NotificationChannel, StartRequest
from engine.storage.base import ObjectRef
from tests.doubles.scripted_runner import ScriptedRunnerDouble, scripted_job_system, write_script

LABELS = {
    1000: {"Weapons": 90.0},
    2000: {"Weapons": 85.0},
    5000: {"Drinking": 70.0},
    9000: {"Pills": 60.0},
}


class RecordingNotifierDouble:
    def __init__(self):
        self.messages = []

    def deliver(self, topic_arn, message, record_attempt):
        self.messages.append((topic_arn, message))
        record_attempt("test:" + topic_arn, 1, True, "recorded")
        return True


def start(jobs, name="clip.json", **members):
    return jobs.service.start_content_moderation(
        "acct", StartRequest(ObjectRef("videos", name), 50.0, **members)
    )


def all_pages(jobs, job_id, sort_by="TIMESTAMP", aggregate_by="TIMESTAMPS"):
    page = jobs.service.get_content_moderation(
        "acct", GetRequest(job_id, sort_by=sort_by, aggregate_by=aggregate_by)
    )
    return [detection_to_wire(d) for d in page.detections]


@pytest.fixture()
def system(tmp_path):
    jobs, runner, _ = scripted_job_system(tmp_path, max_object_bytes=10_000, max_duration_s=60)
    write_script(tmp_path / "objects" / "videos" / "clip.json", 10_000, LABELS)
    jobs.executor.notifier = RecordingNotifierDouble()
    jobs.start()
    yield jobs, runner, tmp_path
    jobs.stop()


def test_a_job_succeeds_and_notifies(system):
    jobs, _, _ = system
    channel = NotificationChannel(
        "arn:aws:sns:us-east-1:123456789012:done", "arn:aws:iam::123456789012:role/r"
    )
    job_id = start(jobs, notification_channel=channel, job_tag="batch-7")
    assert jobs.executor.wait_idle(10)
    job = jobs.store.get_job(job_id)
    assert job.state is JobState.SUCCEEDED and job.metadata.duration_ms == 10_000
    names = [(d["Timestamp"], d["ModerationLabel"]["Name"]) for d in all_pages(jobs, job_id)]
    assert names[:2] == [(1000, "Violence"), (1000, "Weapons")] and (9000, "Pills") in names
    [(topic, message)] = jobs.executor.notifier.messages
    assert topic == channel.sns_topic_arn
    assert (
        message["JobId"] == job_id
        and message["Status"] == "SUCCEEDED"
        and message["JobTag"] == "batch-7"
    )
    assert message["Video"] == {"S3ObjectName": "clip.json", "S3Bucket": "videos"}
    assert jobs.store.notification_attempts(job_id)[0]["succeeded"] == 1
    assert jobs.store.jobs_pending_notification() == []


@pytest.mark.parametrize(
    "script, message",
    [
        ({"duration_ms": 5000, "fail": "The video stream is corrupt at 2.0 s"}, "corrupt at 2.0 s"),
        ({"duration_ms": 61_000}, "maximum duration allowed is 60 s"),
    ],
)
def test_failures_inside_a_job_become_failed_with_a_message(system, script, message):
    jobs, _, data_dir = system
    write_script(data_dir / "objects" / "videos" / "bad.json", **script)
    channel = NotificationChannel(
        "arn:aws:sns:us-east-1:123456789012:done", "arn:aws:iam::123456789012:role/r"
    )
    job_id = start(jobs, "bad.json", notification_channel=channel)
    assert jobs.executor.wait_idle(10)
    page = jobs.service.get_content_moderation("acct", GetRequest(job_id))
    assert page.job.state is JobState.FAILED and message in page.job.status_message
    assert page.detections == []
    assert jobs.executor.notifier.messages[0][1]["Status"] == "FAILED"


def test_a_non_video_object_fails_the_job(system):
    jobs, _, data_dir = system
    (data_dir / "objects" / "videos" / "notes.txt").write_text("hello")
    job_id = start(jobs, "notes.txt")
    jobs.executor.wait_idle(10)
    assert "not a video" in jobs.store.get_job(job_id).status_message


def test_a_runner_that_cannot_start_fails_the_job(tmp_path):
    def broken_runner():
        raise RuntimeError("no model installed")

    jobs, _, _ = scripted_job_system(tmp_path)
    jobs.executor._runner_factory = broken_runner
    write_script(tmp_path / "objects" / "videos" / "clip.json", 1000)
    jobs.start()
    job_id = start(jobs)
    jobs.executor.wait_idle(10)
    job = jobs.store.get_job(job_id)
    assert job.state is JobState.FAILED and "Internal error" in job.status_message
    jobs.stop()


def test_start_checks_the_object(system):
    """A missing bucket, key or version answers Rekognition's one message, which says nothing
    of what exists (engine/storage/access.py)."""
    jobs, _, data_dir = system
    unreadable = "^Unable to get object metadata from S3. Check object key, region"
    with pytest.raises(InvalidS3ObjectException, match=unreadable):
        jobs.service.start_content_moderation(
            "acct", StartRequest(ObjectRef("nobucket", "clip.json"), 50.0)
        )
    with pytest.raises(InvalidS3ObjectException, match=unreadable):
        start(jobs, "missing.json")
    with pytest.raises(InvalidS3ObjectException, match=unreadable):
        jobs.service.start_content_moderation(
            "acct", StartRequest(ObjectRef("videos", "clip.json", "v1"), 50.0)
        )
    (data_dir / "objects" / "videos" / "big.json").write_bytes(b"x" * 10_001)
    with pytest.raises(VideoTooLargeException, match="10001 bytes"):
        start(jobs, "big.json")


def test_resume_runs_only_missing_segments_with_identical_results(tmp_path):
    undisturbed, _, _ = scripted_job_system(tmp_path / "a")
    write_script(tmp_path / "a" / "objects" / "videos" / "clip.json", 10_000, LABELS)
    undisturbed.start()
    reference_id = start(undisturbed)
    undisturbed.executor.wait_idle(10)
    reference = {
        (sort, agg): all_pages(undisturbed, reference_id, sort, agg)
        for sort in ("TIMESTAMP", "NAME")
        for agg in ("TIMESTAMPS", "SEGMENTS")
    }
    undisturbed.stop()

    # First life: the job gets through segment 0 and the process "dies" (workers never started).
    data_dir = tmp_path / "b"
    write_script(data_dir / "objects" / "videos" / "clip.json", 10_000, LABELS)
    first_life, first_runner, _ = scripted_job_system(data_dir)
    job_id = start(first_life)
    job = first_life.store.get_job(job_id)
    first_life.store.mark_running(job_id)
    probe = first_runner.probe(str(data_dir / "objects" / "videos" / "clip.json"))
    plan = first_life.store.save_plan(job_id, first_runner.plan(probe))
    from engine.results import segment_detections

    outcome = first_runner._outcome({"labels": {str(k): v for k, v in LABELS.items()}}, plan[0])
    segment_zero = segment_detections(
        first_runner.taxonomy, outcome.timestamps_ms, outcome.confidences, job.min_confidence
    )
    first_life.store.save_segment_result(
        job_id, 0, segment_zero.sample_timestamps_ms, segment_zero.detections
    )

    second_runner = ScriptedRunnerDouble()
    second_life, _, _ = scripted_job_system(data_dir, runner=second_runner)
    second_life.start()  # resumes the RUNNING job
    assert second_life.executor.wait_idle(10)
    assert second_runner.segments_run == [1, 2]
    assert second_life.store.get_job(job_id).state is JobState.SUCCEEDED
    for (sort, agg), expected in reference.items():
        assert all_pages(second_life, job_id, sort, agg) == expected
    second_life.stop()


def test_results_expire_after_retention(tmp_path, monkeypatch):
    jobs, _, _ = scripted_job_system(tmp_path, result_retention_s=5)
    write_script(tmp_path / "objects" / "videos" / "clip.json", 1000)
    jobs.start()
    job_id = start(jobs)
    jobs.executor.wait_idle(10)
    finished_ms = jobs.store.get_job(job_id).finished_ms
    monkeypatch.setattr("engine.jobs.visibility.now_ms", lambda: finished_ms + 5_000)
    with pytest.raises(ResourceNotFoundException):
        jobs.service.get_content_moderation("acct", GetRequest(job_id))
    jobs.stop()


def test_a_job_keeps_the_decode_mode_it_was_accepted_with(tmp_path):
    """The mode is recorded at StartContentModeration; a server restarted with another
    decode_mode resumes the job in the recorded one, so all its segments decode alike."""
    write_script(tmp_path / "objects" / "videos" / "clip.json", 10_000, LABELS)
    accepting, _, _ = scripted_job_system(tmp_path, decode_mode="keyframes")
    job_id = start(accepting)  # accepted, never run: the process "dies" here
    assert accepting.store.get_job(job_id).decode_mode == "keyframes"

    resumed, runner, _ = scripted_job_system(tmp_path, decode_mode="accurate")
    resumed.start()
    try:
        assert resumed.executor.wait_idle(10)
        assert resumed.store.get_job(job_id).state is JobState.SUCCEEDED
        assert runner.decode_modes == ["keyframes"]
    finally:
        resumed.stop()


def test_a_store_from_before_decode_modes_is_upgraded_in_place(tmp_path):
    import sqlite3

    from engine.jobs.store import JobStore

    path = tmp_path / "jobs.sqlite3"
    JobStore(path).close()
    with sqlite3.connect(path) as connection:  # the schema as an earlier version wrote it
        connection.execute("ALTER TABLE jobs DROP COLUMN decode_mode")
        connection.execute(
            "INSERT INTO jobs (job_id, account, fingerprint, bucket, object_key, min_confidence,"
            " state, model_version, created_ms) VALUES ('old', 'acct', 'f', 'b', 'k', 50,"
            " 'SUCCEEDED', '7.0', 0)"
        )
    assert JobStore(path).get_job("old").decode_mode == "accurate"
