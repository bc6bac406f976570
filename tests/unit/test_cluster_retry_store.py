"""A segment that completes twice (a retried task, a resumed job, two threads) is stored once:
segment results are keyed by (job, segment), so retries can never duplicate detections."""

from __future__ import annotations

import threading

from engine.api.wire import detection_to_wire
from engine.jobs import GetRequest, JobState, StartRequest
from engine.jobs.pipeline import process_job
from engine.jobs.store import JobStore
from engine.results.types import Detection
from engine.storage.base import ObjectRef
from engine.video.types import Segment
from tests.doubles.scripted_runner import ScriptedRunnerDouble, scripted_job_system, write_script

LABELS = {0: {"Weapons": 90.0}, 4000: {"Weapons": 80.0}, 9000: {"Pills": 60.0}}


def started_job(store: JobStore, segments: list[Segment]) -> str:
    job_id, _ = store.create_job(
        "j" * 64, "acct", StartRequest(ObjectRef("b", "k"), 50.0), "7.0", 20
    )
    store.mark_running(job_id)
    store.save_plan(job_id, segments)
    return job_id


def detection(timestamp_ms: int) -> Detection:
    return Detection(timestamp_ms, "Weapons", "Violence", 2, 90.0, label_index=7)


def test_the_second_write_of_a_segment_is_ignored(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    job_id = started_job(store, [Segment(0, 0, 2000), Segment(1, 2000, 4000)])

    assert store.save_segment_result(job_id, 0, [0, 1000], [detection(0), detection(1000)])
    assert not store.save_segment_result(job_id, 0, [0, 1000], [detection(0), detection(1000)])

    detections, samples = store.segment_outputs(job_id)
    assert [d.timestamp_ms for d in detections] == [0, 1000]
    assert samples == [0, 1000]
    assert [s.index for s in store.pending_segments(job_id)] == [1]


def test_racing_writers_of_one_segment_store_it_exactly_once(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    job_id = started_job(JobStore(path), [Segment(0, 0, 2000)])
    barrier, outcomes = threading.Barrier(8), []

    def write() -> None:
        store = JobStore(path)  # its own connection, as another thread or process would have
        barrier.wait()
        outcomes.append(store.save_segment_result(job_id, 0, [0, 1000], [detection(0)]))

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == [False] * 7 + [True]
    assert len(JobStore(path).segment_outputs(job_id)[0]) == 1


class TwiceReportingRunnerDouble(ScriptedRunnerDouble):
    """Reports every finished segment twice, as a retried task that completed twice would."""

    def run_segments(self, source, probe, segments, on_segment_done, decode_mode=None):
        def report_twice(segment, scores):
            on_segment_done(segment, scores)
            on_segment_done(segment, scores)

        super().run_segments(source, probe, segments, report_twice)


def final_rows(jobs, job_id):
    pages = {}
    for sort_by in ("TIMESTAMP", "NAME"):
        for aggregate_by in ("TIMESTAMPS", "SEGMENTS"):
            page = jobs.service.get_content_moderation(
                "acct", GetRequest(job_id, sort_by=sort_by, aggregate_by=aggregate_by)
            )
            pages[(sort_by, aggregate_by)] = [detection_to_wire(d) for d in page.detections]
    return pages


def run_one_job(tmp_path, runner) -> dict:
    jobs, runner, settings = scripted_job_system(tmp_path, runner=runner)
    write_script(tmp_path / "objects" / "videos" / "clip.json", 10_000, LABELS)
    job_id = jobs.service.start_content_moderation(
        "acct", StartRequest(ObjectRef("videos", "clip.json"), 50.0)
    )
    job = process_job(
        jobs.store.get_job(job_id), jobs.store, jobs.executor.objects, runner, settings
    )
    assert job.state is JobState.SUCCEEDED
    return final_rows(jobs, job_id)


def test_a_job_whose_segments_complete_twice_has_the_rows_of_an_undisturbed_run(tmp_path):
    undisturbed = run_one_job(tmp_path / "once", ScriptedRunnerDouble())
    doubled = run_one_job(tmp_path / "twice", TwiceReportingRunnerDouble())
    assert doubled == undisturbed
    # Weapons + Violence at 0 and 4000 ms, Pills and its two ancestors at 9000 ms: once each.
    assert len(undisturbed[("TIMESTAMP", "TIMESTAMPS")]) == 7
