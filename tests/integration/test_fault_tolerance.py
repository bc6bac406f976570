"""Kill -9 a segment worker, an inference actor or the server mid-job: every accepted job still
ends SUCCEEDED with exactly the detections of an undisturbed run (and of the video's truth).
A segment that fails because of the file, or keeps raising, ends its job FAILED with a one-line
StatusMessage. A server stopped normally takes its Ray down and leaves its jobs to resume.

In-process tests drive the real jobs layer and the real Ray runner on the session's Ray (its
processes are descendants of this pytest process, the only ones these tests ever kill); server
tests run the API as a subprocess and kill it, or its own processes, by pid.
"""

from __future__ import annotations

import logging
import os
import random
import re
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine.api.wire import detection_to_wire
from engine.config import EngineSettings
from engine.jobs import GetRequest, JobState, StartRequest, default_runner_factory, open_job_system
from engine.server import put_object
from engine.storage.base import ObjectRef
from tests.integration.api_fixtures import (
    TEST_DOUBLE_MODEL,
    ServerProcess,
    entries_of,
    expected_entries,
    rekognition_client,
    server_env,
    wait_for_job,
)
from tests.integration.fault_fixtures import (
    SEGMENT_TITLE,
    alive,
    colour_sequence,
    kill_pid,
    ray_processes,
    session_processes,
    store_progress,
    wait_until,
)
from tests.media import make_colour_video

pytestmark = [pytest.mark.integration, pytest.mark.ray, pytest.mark.slow]

ACCOUNT = "123456789012"
JOBS = 20
VARIANTS = 4
ORDERS = [(s, a) for s in ("TIMESTAMP", "NAME") for a in ("TIMESTAMPS", "SEGMENTS")]
FAILING_MODEL = "tests.integration.fault_fixtures:FailingColourClassifierDouble"
SLOW_MODEL = "tests.integration.fault_fixtures:SlowColourClassifierDouble"
TITLE = re.compile(r"^ray::moderate_segment (?P<video>\S+) #(?P<segment>\d+)")


# -- videos and the in-process jobs layer -------------------------------------------------------


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Four 20 s colour videos (96x64, 1 s GOPs): path and generator truth per variant."""
    folder = tmp_path_factory.mktemp("fault-videos")
    made = {}
    for variant in range(VARIANTS):
        path = folder / f"variant-{variant}.mp4"
        made[variant] = (path, make_colour_video(path, colour_sequence(variant), size=(96, 64)))
    return made


def engine_settings(
    data_dir: Path, model: str = TEST_DOUBLE_MODEL, actors: int = 2
) -> EngineSettings:
    return EngineSettings(
        data_dir=data_dir,
        model=model,
        segment_length_s=1.0,
        inference_actors=actors,
        inference_actor_cpus=0,
        max_batch_wait_ms=2,
        max_concurrent_jobs=2 * JOBS,
    )


@contextmanager
def job_system(settings: EngineSettings):
    """The real jobs layer over the real runner, on the session's Ray (which it does not own)."""
    jobs = open_job_system(settings, default_runner_factory(settings), worker_count=JOBS)
    jobs.start()
    try:
        yield jobs
    finally:
        jobs.stop()


def start_job(jobs, settings: EngineSettings, source: Path, key: str) -> str:
    put_object(settings, source, "videos", key)
    return jobs.service.start_content_moderation(
        ACCOUNT, StartRequest(ObjectRef("videos", key), 50.0)
    )


def results(jobs, job_id: str) -> dict:
    """Every order of a finished job's detections, as the wire would show them."""
    return {
        (sort_by, aggregate_by): [
            detection_to_wire(d)
            for d in jobs.service.get_content_moderation(
                ACCOUNT, GetRequest(job_id, sort_by=sort_by, aggregate_by=aggregate_by)
            ).detections
        ]
        for sort_by, aggregate_by in ORDERS
    }


def wait_for_terminal(jobs, job_ids, timeout_s: float) -> dict:
    def states():
        found = {job_id: jobs.store.get_job(job_id).state for job_id in job_ids}
        return found if all(state.is_terminal for state in found.values()) else None

    return wait_until(states, timeout_s, "jobs to finish", interval_s=0.1)


@pytest.fixture(scope="module")
def undisturbed(ray_session, videos, tmp_path_factory):
    """Each variant's results from a run nobody disturbed; they must equal the truth."""
    settings = engine_settings(tmp_path_factory.mktemp("undisturbed"))
    with job_system(settings) as jobs:
        job_ids = {
            variant: start_job(jobs, settings, path, f"undisturbed-{variant}.mp4")
            for variant, (path, _) in videos.items()
        }
        states = wait_for_terminal(jobs, job_ids.values(), timeout_s=120)
        assert set(states.values()) == {JobState.SUCCEEDED}
        found = {variant: results(jobs, job_id) for variant, job_id in job_ids.items()}
    for variant, (_, truth) in videos.items():
        assert entries_of(found[variant][("TIMESTAMP", "TIMESTAMPS")]) == expected_entries(truth)
    return found


# -- killing processes of the session's Ray ---------------------------------------------------


def kill_one_segment_worker_per_video(targets: set[str], stop: threading.Event) -> dict:
    """SIGKILL a worker while it runs a segment of each target video, one kill per video.

    The worker is frozen (SIGSTOP) before its title is read again, so the title seen is the
    task it dies in: each kill is attributed to its video and segment exactly. Only
    descendants of this process (the Ray this test session started) are touched.
    """
    killed: dict[str, tuple[int, int]] = {}
    while not stop.is_set() and len(killed) < len(targets):
        for worker in ray_processes(os.getpid(), SEGMENT_TITLE):
            match = TITLE.match(worker.title)
            if not match or match["video"] not in targets or match["video"] in killed:
                continue
            if not _kill_if_still_running(worker.pid, match["video"], match["segment"]):
                continue
            killed[match["video"]] = (int(match["segment"]), worker.pid)
            break  # one at a time: let Ray start a replacement worker
        time.sleep(0.005)
    return killed


def _kill_if_still_running(pid: int, video: str, segment: str) -> bool:
    import psutil

    try:
        os.kill(pid, signal.SIGSTOP)
    except ProcessLookupError:
        return False
    try:
        title = " ".join(psutil.Process(pid).cmdline()).strip()
    except psutil.Error:
        title = ""
    match = TITLE.match(title)
    if match and (match["video"], match["segment"]) == (video, segment):
        return kill_pid(pid)
    os.kill(pid, signal.SIGCONT)
    return False


def test_killing_segment_workers_mid_job_loses_and_duplicates_nothing(
    ray_session, videos, undisturbed, tmp_path
):
    settings = engine_settings(tmp_path / "data")
    keys = {f"job-{number:02d}.mp4": number % VARIANTS for number in range(JOBS)}
    for key, variant in keys.items():
        put_object(settings, videos[variant][0], "videos", key)
    with job_system(settings) as jobs:
        stop = threading.Event()
        kills: dict = {}
        killer = threading.Thread(
            target=lambda: kills.update(kill_one_segment_worker_per_video(set(keys), stop))
        )
        killer.start()
        try:
            job_ids = {
                key: jobs.service.start_content_moderation(
                    ACCOUNT, StartRequest(ObjectRef("videos", key), 50.0)
                )
                for key in keys
            }
            states = wait_for_terminal(jobs, job_ids.values(), timeout_s=180)
        finally:
            stop.set()
            killer.join()
        found = {key: results(jobs, job_id) for key, job_id in job_ids.items()}
        messages = {
            key: jobs.store.get_job(job_id).status_message for key, job_id in job_ids.items()
        }

    # Every one of the 20 jobs lost a worker in the middle of one of its segments...
    assert sorted(kills) == sorted(keys), f"only {len(kills)} of {JOBS} jobs were hit: {kills}"
    # ...and still ended SUCCEEDED with exactly the undisturbed detections (no loss, no duplicate).
    assert set(states.values()) == {JobState.SUCCEEDED}, messages
    for key, variant in keys.items():
        assert found[key] == undisturbed[variant], key


def test_killing_the_inference_actor_mid_job_changes_nothing(
    ray_session, videos, undisturbed, tmp_path, caplog
):
    caplog.set_level(logging.WARNING, logger="engine.cluster.runner")
    settings = engine_settings(tmp_path / "data", actors=1)  # no spare: tasks wait for the restart
    with job_system(settings) as jobs:
        pool = jobs.executor.runner().pool
        (before,) = pool.stats()
        job_ids = {
            variant: start_job(jobs, settings, path, f"actor-{variant}.mp4")
            for variant, (path, _) in videos.items()
        }

        def mid_job():
            progress = store_progress(settings.data_dir / "jobs.sqlite3")
            return any(0 < progress[j][0] < progress[j][1] for j in job_ids.values())

        wait_until(mid_job, 60, "a job to be half done")
        assert kill_pid(before["pid"])
        states = wait_for_terminal(jobs, job_ids.values(), timeout_s=120)
        (after,) = pool.stats()
        found = {variant: results(jobs, job_id) for variant, job_id in job_ids.items()}

    assert set(states.values()) == {JobState.SUCCEEDED}
    assert after["pid"] != before["pid"] and not alive(before["pid"])  # Ray restarted it
    assert found == undisturbed
    # The restart was absorbed inside the segment tasks (classify calls re-sent / retried):
    # no segment had to be run again.
    assert not [r for r in caplog.records if r.getMessage().startswith("retrying")]


# -- failures that end the job ------------------------------------------------------------------


def damaged_copy(source: Path, target: Path) -> Path:
    """The same container with every frame's bytes replaced: it probes, but cannot decode."""
    data = bytearray(source.read_bytes())
    start, end = data.find(b"mdat") + 4, data.find(b"moov")
    assert 0 < start < end, "expected mdat before moov"
    noise = random.Random(7)
    data[start : end - 4] = bytes(noise.randrange(256) for _ in range(end - 4 - start))
    target.write_bytes(bytes(data))
    return target


def test_failing_segments_end_the_job_with_a_plain_status_message(ray_session, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="engine.cluster.runner")
    settings = engine_settings(tmp_path / "data", model=FAILING_MODEL, actors=1)
    magenta = make_colour_video(
        tmp_path / "magenta.mp4", [("red", 4.0), ("magenta", 1.0), ("blue", 5.0)], size=(96, 64)
    )
    assert magenta.colour_at(4000) == "magenta" and magenta.colour_at(5000) == "blue"
    make_colour_video(tmp_path / "fine.mp4", colour_sequence(1, seconds=6), size=(96, 64))
    damaged_copy(tmp_path / "fine.mp4", tmp_path / "damaged.mp4")
    with job_system(settings) as jobs:
        job_ids = {
            name: start_job(jobs, settings, tmp_path / name, name)
            for name in ("magenta.mp4", "damaged.mp4", "fine.mp4")
        }
        wait_for_terminal(jobs, job_ids.values(), timeout_s=120)
        records = {name: jobs.store.get_job(job_id) for name, job_id in job_ids.items()}

    # An unexpected error is retried once, then named in one line with the segment it hit.
    assert records["magenta.mp4"].state is JobState.FAILED
    assert records["magenta.mp4"].status_message == (
        "Processing failed at segment 4 (4.0-5.0 s) after 2 attempt(s): "
        "RuntimeError: the failing test double refuses magenta frames"
    )
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("retrying")]
    assert retries == [
        "retrying segment 4 (4.0-5.0 s) after "
        + "RuntimeError: the failing test double refuses magenta frames"
    ]
    # The file's own fault is deterministic: never retried, reported as the decoder saw it.
    damaged = records["damaged.mp4"]
    assert damaged.state is JobState.FAILED
    assert "damaged.mp4" in damaged.status_message and "\n" not in damaged.status_message
    assert not re.search(r"Traceback|RayTaskError|ray::", damaged.status_message)
    # A job sharing the pool with both failures is untouched by them.
    assert records["fine.mp4"].state is JobState.SUCCEEDED


# -- the server process ---------------------------------------------------------------------


def put_variants(data_dir: Path, videos, keys: dict[str, int]) -> None:
    settings = EngineSettings(data_dir=data_dir)
    for key, variant in keys.items():
        put_object(settings, videos[variant][0], "videos", key)


def fault_server_env(data_dir: Path, model: str = TEST_DOUBLE_MODEL) -> dict[str, str]:
    return server_env(
        data_dir,
        MODENGINE_MODEL=model,
        MODENGINE_SEGMENT_LENGTH_S="1",
        MODENGINE_INFERENCE_ACTOR_CPUS="0",
        MODENGINE_MAX_BATCH_WAIT_MS="2",
    )


def is_raylet(pid: int) -> bool:
    import psutil

    try:
        return "raylet" in " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return False


def token(key: str) -> str:
    return key.removesuffix(".mp4")


def finished_entries(client, job_id: str) -> list[dict]:
    _, pages = wait_for_job(client, job_id, timeout_s=180)
    assert pages[-1]["JobStatus"] == "SUCCEEDED", pages[-1].get("StatusMessage")
    return [d for page in pages for d in page["ModerationLabels"]]


def test_a_server_killed_with_20_jobs_in_flight_finishes_all_of_them(ray_session, videos, tmp_path):
    data_dir = tmp_path / "data"
    keys = {f"job-{number:02d}.mp4": number % VARIANTS for number in range(JOBS)}
    keys |= {f"undisturbed-{variant}.mp4": variant for variant in range(VARIANTS)}
    put_variants(data_dir, videos, keys)
    env, log_path = fault_server_env(data_dir), tmp_path / "server.log"
    database = data_dir / "jobs.sqlite3"

    first_life = ServerProcess(data_dir, env, [], log_path).start()
    try:
        client = rekognition_client(first_life.url)
        job_ids = {
            key: client.start_content_moderation(
                Video={"S3Object": {"Bucket": "videos", "Name": key}}, ClientRequestToken=token(key)
            )["JobId"]
            for key in keys
            if key.startswith("job-")
        }

        def mid_flight():
            progress = store_progress(database)
            done = sum(progress[job_id][0] for job_id in job_ids.values())
            return done >= JOBS // 2 and all(
                progress[j][2] != "SUCCEEDED" for j in job_ids.values()
            )

        wait_until(mid_flight, 120, "20 jobs to be in flight", interval_s=0.02)
        # kill -9 of the server process alone (Ray's agents outlive it; they are cleaned up
        # below, by session, before the restart).
        kill_pid(first_life.process.pid)
        first_life.process.wait(timeout=30)
        at_kill = store_progress(database)
    finally:
        first_life.kill()
    assert all(at_kill[j][2] in ("SUBMITTED", "RUNNING") for j in job_ids.values())
    assert any(0 < at_kill[j][0] < at_kill[j][1] for j in job_ids.values())

    # A Ray already runs on this machine (this test session's) and RAY_ADDRESS names it: the
    # restarted server must still start its own instead of joining a stale cluster.
    foreign_gcs = ray_session.get_runtime_context().gcs_address
    second_env = env | {"RAY_ADDRESS": foreign_gcs}
    second_life = ServerProcess(data_dir, second_env, [], log_path).start()
    try:
        client = rekognition_client(second_life.url)
        resumed = {key: finished_entries(client, job_id) for key, job_id in job_ids.items()}
        again = {  # the same ClientRequestTokens still name the same jobs: nothing duplicated
            key: client.start_content_moderation(
                Video={"S3Object": {"Bucket": "videos", "Name": key}}, ClientRequestToken=token(key)
            )["JobId"]
            for key in job_ids
        }
        undisturbed_runs = {
            variant: finished_entries(
                client,
                client.start_content_moderation(
                    Video={"S3Object": {"Bucket": "videos", "Name": f"undisturbed-{variant}.mp4"}}
                )["JobId"],
            )
            for variant in range(VARIANTS)
        }
        own_ray = [
            pid
            for pid in session_processes(second_life.process.pid)
            if pid != second_life.process.pid and is_raylet(pid)
        ]
        at_end = store_progress(database)
    finally:
        second_life.stop()

    assert again == job_ids
    for key, job_id in job_ids.items():
        assert resumed[key] == undisturbed_runs[keys[key]], key
    for variant, (_, truth) in videos.items():
        assert entries_of(undisturbed_runs[variant]) == expected_entries(truth)
    # The second server started a Ray of its own (a raylet in its own process session) rather
    # than joining the foreign one that RAY_ADDRESS names.
    assert len(own_ray) == 1
    # Resumed jobs ran only the segments missing at the kill (all of them if none was planned).
    log_text = log_path.read_text()
    for job_id in job_ids.values():
        done_at_kill, planned = at_kill[job_id][0], at_end[job_id][1]
        runs = [int(n) for n in re.findall(rf"job {job_id}: running (\d+) segment", log_text)]
        assert runs[-1] == planned - done_at_kill, (job_id, runs, at_kill[job_id])


def test_a_server_stopped_normally_takes_its_ray_down_and_resumes_later(videos, tmp_path):
    data_dir = tmp_path / "data"
    put_variants(data_dir, videos, {"clip.mp4": 0})
    # Half a second per classify batch: the job is still seconds from done when SIGTERM lands.
    env, log_path = fault_server_env(data_dir, SLOW_MODEL), tmp_path / "server.log"
    database = data_dir / "jobs.sqlite3"

    first_life = ServerProcess(data_dir, env, [], log_path).start()
    try:
        client = rekognition_client(first_life.url)
        job_id = client.start_content_moderation(
            Video={"S3Object": {"Bucket": "videos", "Name": "clip.mp4"}}
        )["JobId"]
        wait_until(
            lambda: store_progress(database).get(job_id, (0,))[0] >= 2, 120, "the job to start"
        )
        server_pid = first_life.process.pid
        ray_pids = [pid for pid in session_processes(server_pid) if pid != server_pid]
        first_life.process.send_signal(signal.SIGTERM)
        exit_code = first_life.process.wait(timeout=60)
        gone = wait_until(
            lambda: not [pid for pid in ray_pids if alive(pid)], 30, "the server's Ray to exit"
        )
    finally:
        first_life.kill()
    # uvicorn re-raises the SIGTERM it handled once its graceful shutdown is over.
    assert exit_code in (0, -signal.SIGTERM), first_life.log_tail()
    assert "the local Ray this runner started is shut down" in first_life.log_tail()
    assert ray_pids and gone  # every Ray process it started (raylet, GCS, agents, workers)
    done, total, state = store_progress(database)[job_id]
    assert state == "RUNNING" and done < total  # interrupted, not FAILED: it resumes below

    # The same classifier without the delay: the resumed job's results must not change.
    second_life = ServerProcess(data_dir, fault_server_env(data_dir), [], log_path).start()
    try:
        entries = entries_of(finished_entries(rekognition_client(second_life.url), job_id))
    finally:
        second_life.stop()
    assert entries == expected_entries(videos[0][1])
