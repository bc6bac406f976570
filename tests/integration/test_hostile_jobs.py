"""The hostile corpus end to end (DESIGN.md section 9): one real server (real Ray runner, the
colour test-double model), every file of tests/hostile_media.py started as a job through boto3.

Each job must end as the corpus says, within a time limit: FAILED with a StatusMessage a person
understands (the video's own explanation, one short line, no traceback, repr, path or URL
query), or SUCCEEDED where the file in fact plays; the two 11 GiB files are refused at Start
with VideoTooLargeException (the size limit). Every job sends exactly one completion message.
Meanwhile no Ray worker of the server goes over WORKER_MEMORY_LIMIT_MB (peak RSS, VmHWM), and
afterwards the server still runs a good video to the same detections as before.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import pytest
from botocore.exceptions import ClientError

from engine.config import EngineSettings
from engine.server import put_object
from tests.hostile_media import CORPUS_NAMES, EITHER, PLAYABLE, REJECTED, HostileCase, build_corpus
from tests.integration.api_fixtures import (
    ROLE_ARN,
    ServerProcess,
    WebhookReceiver,
    entries_of,
    expected_entries,
    rekognition_client,
    server_env,
    wait_for_job,
)
from tests.integration.fault_fixtures import ray_processes
from tests.media import make_colour_video

pytestmark = [pytest.mark.integration, pytest.mark.ray, pytest.mark.slow]

BUCKET = "hostile"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:AmazonRekognitionHostileTopic"
PER_FILE_LIMIT_S = 60.0
"""From StartContentModeration to a terminal JobStatus, for one corpus file."""
CORPUS_LIMIT_S = 90.0
"""From the first Start to the last terminal status, the whole corpus running at once."""
WORKER_MEMORY_LIMIT_MB = 1024.0
"""Peak resident memory any one Ray worker process of the server may reach (not a setting)."""
MAX_MESSAGE_CHARS = 300
TOO_LARGE = {"sparse_11gb_zeros", "sparse_11gb_tail"}
"""11 GiB objects: over the default 10 GiB max_object_bytes, refused at Start."""
UNREADABLE_MARKERS = (
    "Traceback",
    "<",
    "object at 0x",
    "RayTaskError",
    "RayWorkerError",
    "ray::",
    "Errno",
    "av.error",
    "{'",
    "b'",
    "Internal error",  # an unexpected exception, not the video's explanation
)


def assert_person_readable(message: str, data_dir: Path) -> None:
    """One short line of prose: no traceback, repr, internal path or URL query string."""
    assert message and message.strip() == message, repr(message)
    assert "\n" not in message and len(message) < MAX_MESSAGE_CHARS, message
    for marker in UNREADABLE_MARKERS:
        assert marker not in message, f"{marker!r} in {message!r}"
    assert str(data_dir) not in message and not re.search(r"(^|[\s(])/\w", message), message
    assert not re.search(r"https?://\S*\?", message), message
    assert not re.search(r"\b\w+(Error|Exception)\(", message), message  # repr of an exception
    assert re.search(r"[A-Za-z]{3,} [A-Za-z]{2,}", message), message  # words, not a code


# -- memory: the peak RSS of every Ray worker process the server started --------------------


def vm_hwm_mb(pid: int) -> float | None:
    """The kernel's high-water mark of a process's resident memory (VmHWM), in MiB."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", text, re.MULTILINE)
    return int(match[1]) / 1024 if match else None


class WorkerMemoryWatch:
    """Samples VmHWM of every Ray worker (`ray::` titled process, Ray's agents left out)
    descending from the server, every 0.1 s.

    VmHWM is a high-water mark, so a sample taken any time before a worker exits sees its peak
    so far, including the peak of a segment that failed (failed tasks report nothing back).
    """

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.peak_mb: dict[int, float] = {}
        self.title: dict[int, str] = {}
        self.titles_seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.sample()

    def sample(self) -> None:
        for worker in ray_processes(self.server_pid, "ray::"):
            if "Agent" in worker.title:  # Ray's per-node agents are not workers
                continue
            peak = vm_hwm_mb(worker.pid)
            self.titles_seen.add(worker.title.split(" #")[0])
            if peak is not None and peak >= self.peak_mb.get(worker.pid, 0.0):
                self.peak_mb[worker.pid] = peak
                self.title[worker.pid] = worker.title


# -- the server and the corpus --------------------------------------------------------------


def store_case(settings: EngineSettings, case: HostileCase, key: str) -> None:
    """Put a corpus file in the embedded store; sparse files are hard-linked into it, since
    copying them (put_object) would write every byte of their holes to disk."""
    stat = case.path.stat()
    if stat.st_blocks * 512 >= stat.st_size:
        put_object(settings, case.path, BUCKET, key)
        return
    target = settings.data_dir / "objects" / BUCKET / key
    target.parent.mkdir(parents=True, exist_ok=True)
    os.link(case.path, target)


@dataclass
class CorpusRun:
    """What the corpus run saw, for the tests below to judge."""

    cases: dict[str, HostileCase]
    data_dir: Path
    refused: dict[str, ClientError] = field(default_factory=dict)
    job_ids: dict[str, str] = field(default_factory=dict)
    elapsed_s: dict[str, float] = field(default_factory=dict)
    final_pages: dict[str, list[dict]] = field(default_factory=dict)
    corpus_s: float = 0.0
    completion_messages: list[dict] = field(default_factory=list)
    worker_peaks_mb: dict[int, float] = field(default_factory=dict)
    worker_titles: dict[int, str] = field(default_factory=dict)
    worker_titles_seen: set[str] = field(default_factory=set)


def key_of(case: HostileCase) -> str:
    return f"{case.name}{case.path.suffix}"


def start_job(client, key: str, tag: str) -> str:
    return client.start_content_moderation(
        Video={"S3Object": {"Bucket": BUCKET, "Name": key}},
        NotificationChannel={"SNSTopicArn": TOPIC_ARN, "RoleArn": ROLE_ARN},
        JobTag=tag,
    )["JobId"]


def wait_for_all(client, started: dict[str, tuple[str, float]], limit_s: float) -> dict[str, float]:
    """Poll every job until each is terminal; seconds from its Start to the first terminal poll."""
    elapsed: dict[str, float] = {}
    deadline = time.monotonic() + limit_s
    while len(elapsed) < len(started):
        for name, (job_id, started_at) in started.items():
            if name in elapsed:
                continue
            if client.get_content_moderation(JobId=job_id)["JobStatus"] != "IN_PROGRESS":
                elapsed[name] = time.monotonic() - started_at
        if time.monotonic() > deadline:
            stuck = sorted(set(started) - set(elapsed))
            raise TimeoutError(f"still IN_PROGRESS after {limit_s} s: {stuck}")
        time.sleep(0.2)
    return elapsed


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """One server over an embedded store holding the corpus and a good colour video."""
    work = tmp_path_factory.mktemp("hostile-jobs")
    cases = {case.name: case for case in build_corpus(work / "corpus")}
    data_dir = work / "data"
    settings = EngineSettings(data_dir=data_dir)
    for case in cases.values():
        store_case(settings, case, key_of(case))
    truth = make_colour_video(work / "good.mp4", [("red", 2), ("white", 1), ("blue", 2)])
    put_object(settings, work / "good.mp4", BUCKET, "good.mp4")
    webhook = WebhookReceiver()
    env = server_env(data_dir, MODENGINE_MAX_CONCURRENT_JOBS=str(2 * len(cases)))
    log_path = work / "server.log"
    server = ServerProcess(
        data_dir, env, ["--webhook", f"{TOPIC_ARN}={webhook.url}"], log_path
    ).start()
    try:
        yield {
            "server": server,
            "client": rekognition_client(server.url),
            "cases": cases,
            "data_dir": data_dir,
            "truth": truth,
            "webhook": webhook,
        }
    finally:
        server.stop()
        webhook.close()


@pytest.fixture(scope="module")
def good_run(hostile_server):
    """A good video run before the corpus (this also starts the server's Ray)."""
    client = hostile_server["client"]
    job_id = start_job(client, "good.mp4", "good-before")
    _, pages = wait_for_job(client, job_id, timeout_s=120)
    assert pages[-1]["JobStatus"] == "SUCCEEDED", hostile_server["server"].log_tail()
    entries = entries_of([d for page in pages for d in page["ModerationLabels"]])
    assert entries == expected_entries(hostile_server["truth"])
    return job_id, entries


@pytest.fixture(scope="module")
def corpus_run(hostile_server, good_run) -> CorpusRun:
    """Every corpus file started at once, each waited for, while worker memory is watched."""
    client, server = hostile_server["client"], hostile_server["server"]
    run = CorpusRun(cases=hostile_server["cases"], data_dir=hostile_server["data_dir"])
    started: dict[str, tuple[str, float]] = {}
    with WorkerMemoryWatch(server.process.pid) as watch:
        corpus_started = time.monotonic()
        for name, case in run.cases.items():
            try:
                started[name] = (start_job(client, key_of(case), name), time.monotonic())
            except ClientError as error:
                run.refused[name] = error
        run.elapsed_s = wait_for_all(client, started, CORPUS_LIMIT_S + PER_FILE_LIMIT_S)
        run.corpus_s = time.monotonic() - corpus_started
    run.worker_peaks_mb, run.worker_titles = watch.peak_mb, watch.title
    run.worker_titles_seen = watch.titles_seen
    run.job_ids = {name: job_id for name, (job_id, _) in started.items()}
    for name, job_id in run.job_ids.items():
        run.final_pages[name] = wait_for_job(client, job_id, timeout_s=5)[1]
    wanted = set(run.job_ids.values())
    run.completion_messages = [
        message
        for message in hostile_server["webhook"].wait_for(
            lambda found: wanted <= {m["JobId"] for m in found}, timeout_s=30
        )
        if message["JobId"] in wanted
    ]
    return run


# -- the tests ------------------------------------------------------------------------------


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_hostile_file_ends_as_the_corpus_says_with_a_readable_message(corpus_run, name):
    case = corpus_run.cases[name]
    if name in TOO_LARGE:
        error = corpus_run.refused.get(name)
        assert error is not None, f"an 11 GiB object was accepted as job {corpus_run.job_ids}"
        assert error.response["Error"]["Code"] == "VideoTooLargeException"
        message = error.response["Error"]["Message"]
        print(f"{name}: refused at Start: {message}")
        assert_person_readable(message, corpus_run.data_dir)
        assert re.search(r"is \d+ bytes; the maximum is \d+ bytes", message), message
        return
    assert name not in corpus_run.refused, corpus_run.refused.get(name)
    assert corpus_run.elapsed_s[name] < PER_FILE_LIMIT_S
    pages = corpus_run.final_pages[name]
    last = pages[-1]
    print(
        f"{name}: {last['JobStatus']} in {corpus_run.elapsed_s[name]:.1f} s: {last.get('StatusMessage')}"
    )
    assert last["JobTag"] == name
    if case.outcome == PLAYABLE or (case.outcome == EITHER and last["JobStatus"] == "SUCCEEDED"):
        assert last["JobStatus"] == "SUCCEEDED", last.get("StatusMessage")
        assert "StatusMessage" not in last
        metadata = last["VideoMetadata"]
        assert metadata["DurationMillis"] > 0, metadata
        assert metadata["FrameWidth"] > 0 and metadata["FrameHeight"] > 0, metadata
        return
    assert case.outcome in (REJECTED, EITHER)
    assert last["JobStatus"] == "FAILED"
    assert len(pages) == 1 and last["ModerationLabels"] == [] and "NextToken" not in last
    message = last["StatusMessage"]
    assert_person_readable(message, corpus_run.data_dir)
    # The video's own explanation reached the wire (the pattern tests/unit checks on decode).
    assert re.search(case.message_pattern, message), message


def test_every_job_sent_exactly_one_completion_message_matching_its_status(corpus_run):
    by_job: dict[str, list[dict]] = {}
    for message in corpus_run.completion_messages:
        by_job.setdefault(message["JobId"], []).append(message)
    assert set(by_job) == set(corpus_run.job_ids.values())
    for name, job_id in corpus_run.job_ids.items():
        [message] = by_job[job_id]
        case = corpus_run.cases[name]
        assert message["Status"] == corpus_run.final_pages[name][-1]["JobStatus"]
        assert message["API"] == "StartContentModeration" and message["JobTag"] == name
        assert message["Video"] == {"S3ObjectName": key_of(case), "S3Bucket": BUCKET}


def test_the_whole_corpus_finishes_within_its_time_limit(corpus_run):
    assert len(corpus_run.job_ids) == len(CORPUS_NAMES) - len(TOO_LARGE)
    print(
        f"corpus: {len(corpus_run.job_ids)} jobs in {corpus_run.corpus_s:.1f} s; slowest "
        f"{max(corpus_run.elapsed_s.values()):.1f} s"
    )
    assert corpus_run.corpus_s < CORPUS_LIMIT_S


def test_no_worker_went_over_its_memory_limit(corpus_run):
    peaks = corpus_run.worker_peaks_mb
    assert len(peaks) >= 2, "no Ray worker of the server was ever seen"
    assert any("InferenceActor" in title for title in corpus_run.worker_titles.values())
    heaviest = max(peaks, key=peaks.get)
    print(
        f"{len(peaks)} Ray worker processes; heaviest {peaks[heaviest]:.0f} MiB "
        f"({corpus_run.worker_titles[heaviest]}); seen: {sorted(corpus_run.worker_titles_seen)}"
    )
    assert peaks[heaviest] > 10  # the reading is real
    over = {
        f"{corpus_run.worker_titles[pid]} (pid {pid})": round(mb)
        for pid, mb in peaks.items()
        if mb > WORKER_MEMORY_LIMIT_MB
    }
    assert not over, f"workers over {WORKER_MEMORY_LIMIT_MB:.0f} MiB: {over}"


def test_the_server_answers_normally_afterwards(hostile_server, good_run, corpus_run):
    client, server = hostile_server["client"], hostile_server["server"]
    assert server.process.poll() is None, server.log_tail()
    earlier_job_id, earlier_entries = good_run
    _, pages = wait_for_job(client, earlier_job_id, timeout_s=5)
    assert pages[-1]["JobStatus"] == "SUCCEEDED"
    assert entries_of([d for page in pages for d in page["ModerationLabels"]]) == earlier_entries
    _, pages = wait_for_job(client, start_job(client, "good.mp4", "good-after"), timeout_s=60)
    assert pages[-1]["JobStatus"] == "SUCCEEDED", pages[-1].get("StatusMessage")
    assert entries_of([d for page in pages for d in page["ModerationLabels"]]) == earlier_entries
    # Nothing in the corpus was an unexpected error inside the server.
    assert "internal error in a job" not in server.log_tail(10**7)
