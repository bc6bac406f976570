"""Stopping the executor mid-job leaves the job RUNNING for the next start (never FAILED), and
one executor never runs the same job twice at once."""

from __future__ import annotations

import threading
import time

from engine.cluster.failures import RunnerStoppedError
from engine.jobs import JobState, StartRequest
from engine.storage.base import ObjectRef
from tests.doubles.scripted_runner import ScriptedRunnerDouble, scripted_job_system, write_script


class StoppableRunnerDouble(ScriptedRunnerDouble):
    """Raises RunnerStoppedError once shut down, as the real runner's segment loop does."""

    def run_segments(self, source, probe, segments, on_segment_done, decode_mode=None):
        def stop_if_shut_down(segment, scores):
            if self.shut_down:
                raise RunnerStoppedError("the engine is shutting down")
            on_segment_done(segment, scores)

        super().run_segments(source, probe, segments, stop_if_shut_down)


def started_system(tmp_path):
    runner = StoppableRunnerDouble()
    runner.release.clear()  # hold the job after its first segment
    jobs, runner, _ = scripted_job_system(tmp_path, runner=runner)
    write_script(tmp_path / "objects" / "videos" / "clip.json", 12_000, {0: {"Weapons": 90.0}})
    jobs.start()
    job_id = jobs.service.start_content_moderation(
        "acct", StartRequest(ObjectRef("videos", "clip.json"), 50.0)
    )
    assert runner.entered.wait(10)
    deadline = time.monotonic() + 10
    while len(jobs.store.pending_segments(job_id)) != 2:  # segment 0 stored; runner waits
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return jobs, runner, job_id


def test_a_job_interrupted_by_stop_stays_running_and_resumes(tmp_path):
    jobs, runner, job_id = started_system(tmp_path)
    jobs.stop()
    runner.release.set()
    assert jobs.executor.wait_idle(10)
    job = jobs.store.get_job(job_id)
    assert job.state is JobState.RUNNING and job.status_message is None
    assert [s.index for s in jobs.store.pending_segments(job_id)] == [1, 2]

    again, resumed_runner, _ = scripted_job_system(tmp_path)
    again.start()  # a new server life resumes the unfinished job
    try:
        assert again.executor.wait_idle(10)
        assert again.store.get_job(job_id).state is JobState.SUCCEEDED
        assert resumed_runner.segments_run == [1, 2]
    finally:
        again.stop()


def test_a_job_already_running_is_not_run_twice(tmp_path):
    jobs, runner, job_id = started_system(tmp_path)
    try:
        second = threading.Thread(target=jobs.executor.run_job, args=(job_id,))
        second.start()
        second.join(5)
        assert not second.is_alive()  # returned at once: the job is claimed by a worker
        runner.release.set()
        assert jobs.executor.wait_idle(10)
        assert jobs.store.get_job(job_id).state is JobState.SUCCEEDED
        assert runner.segments_run == [0, 1, 2]
    finally:
        jobs.stop()
