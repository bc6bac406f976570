"""Acceptance: `python -m engine.batch` submitted through the Ray Jobs API to a head this test
starts itself (`ray start --head --block`, its own ports and temp dir), over a moto S3 bucket.
The head is stopped by its process id (SIGTERM), and no process of it may be left behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.integration.api_fixtures import (
    REPO_ROOT,
    TEST_DOUBLE_MODEL,
    aws_client,
    entries_of,
    expected_entries,
    free_port,
    moto_server,
)
from tests.media import make_colour_video

pytestmark = [pytest.mark.integration, pytest.mark.ray, pytest.mark.slow]

RAY = Path(sys.executable).with_name("ray")
SCENES = [[("red", 2), ("white", 1)], [("green", 2)], [("blue", 1), ("magenta", 1)],
          [("white", 2)], [("yellow", 1), ("red", 2)]]


class RayHead:
    """`ray start --head --block` as a child process, on free loopback ports and a temp dir of
    its own, so it never meets another Ray on this machine; stopped by its pid only."""

    def __init__(self) -> None:
        # Short: Ray's Unix sockets live under the temp dir (107-character path limit).
        self.temp_dir = Path(tempfile.mkdtemp(prefix="rayjob-", dir="/tmp"))
        self.dashboard_url = f"http://127.0.0.1:{free_port()}"
        ports = {name: str(free_port()) for name in (
            "--port", "--ray-client-server-port", "--dashboard-agent-listen-port",
            "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port",
            "--object-manager-port", "--node-manager-port")}
        command = [str(RAY), "start", "--head", "--block", "--num-cpus=2",
                   "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
                   f"--dashboard-port={self.dashboard_url.rsplit(':', 1)[1]}",
                   f"--temp-dir={self.temp_dir}", "--disable-usage-stats",
                   *[f"{name}={port}" for name, port in ports.items()]]
        # No drain on SIGTERM: Ray would wait up to 30 s for the node to drain (a Serve
        # concern); this head runs nothing that needs it.
        env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": "",
               "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
        env.pop("RAY_ADDRESS", None)
        self.log = open(self.temp_dir.parent / f"{self.temp_dir.name}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"ray start exited: {self.log_tail()}"
            try:
                if httpx.get(self.dashboard_url + "/api/version", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the Ray dashboard did not come up: {self.log_tail()}")

    def own_processes(self) -> list[psutil.Process]:
        """Descendants of `ray start`, plus anything whose command line names our temp dir."""
        found = {}
        try:
            for child in psutil.Process(self.process.pid).children(recursive=True):
                found[child.pid] = child
        except psutil.NoSuchProcess:
            pass
        for candidate in psutil.process_iter(["pid", "cmdline"]):
            try:
                if str(self.temp_dir) in " ".join(candidate.info["cmdline"] or []):
                    found[candidate.pid] = candidate
            except psutil.Error:
                continue
        found.pop(self.process.pid, None)
        return [process for process in found.values() if _alive(process)]

    def stop(self) -> list[str]:
        """SIGTERM the `ray start --block` process; returns what survived it (then killed)."""
        members = self.own_processes()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(p) for p in members + self.own_processes()):
            time.sleep(0.5)
        survivors = [p for p in members + self.own_processes() if _alive(p)]
        described = [f"{p.pid} {' '.join(p.cmdline()[:3])}" for p in survivors if _alive(p)]
        for process in survivors:
            try:
                process.kill()
            except psutil.Error:
                pass
        self.log.close()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        return described

    def log_tail(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-3000:]


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_batch_runs_as_a_ray_job_on_a_head_we_start_and_stop(tmp_path):
    from ray.job_submission import JobStatus, JobSubmissionClient

    # The head stops before moto does: its idle workers keep connections to moto open, and
    # moto's shutdown would wait for them.
    with moto_server() as endpoint:
        s3 = aws_client("s3", endpoint)
        s3.create_bucket(Bucket="media")
        truths = {}
        for number, scenes in enumerate(SCENES):
            path = tmp_path / f"v{number}.mp4"
            truths[f"v{number}.mp4"] = make_colour_video(path, scenes, seed=number)
            s3.put_object(Bucket="media", Key=f"in/v{number}.mp4", Body=path.read_bytes())
        head = RayHead()
        try:
            head.wait_ready()
            jobs = JobSubmissionClient(head.dashboard_url)
            job_id = jobs.submit_job(
                entrypoint=f"{sys.executable} -m engine.batch --input s3://media/in/ "
                           "--output s3://media/out/",
                runtime_env={
                    "working_dir": str(REPO_ROOT),
                    "env_vars": {
                        "MODENGINE_MODEL": TEST_DOUBLE_MODEL,
                        "MODENGINE_SEGMENT_LENGTH_S": "2",
                        "MODENGINE_DATA_DIR": str(tmp_path / "data"),
                        "MODENGINE_S3_ENDPOINT": endpoint,
                        "MODENGINE_S3_ACCESS_KEY": "x",
                        "MODENGINE_S3_SECRET_KEY": "y",
                    },
                },
            )
            deadline = time.monotonic() + 240
            while not (status := jobs.get_job_status(job_id)).is_terminal():
                assert time.monotonic() < deadline, jobs.get_job_logs(job_id)[-3000:]
                time.sleep(1)
            logs = jobs.get_job_logs(job_id)
            assert status == JobStatus.SUCCEEDED, logs[-4000:]
            assert "batch: 5 video(s) under s3://media/in/" in logs
            assert logs.count("SUCCEEDED v") == 5  # one line per finished video
        finally:
            survivors = head.stop()
        assert survivors == [], f"processes of the Ray head outlived it: {survivors}"

        summary = json.loads(s3.get_object(Bucket="media", Key="out/summary.json")["Body"].read())
        assert summary["Counts"]["Succeeded"] == 5 and summary["Counts"]["Failed"] == 0
        for name, truth in truths.items():
            result = json.loads(s3.get_object(Bucket="media", Key=f"out/{name}.json")["Body"].read())
            assert entries_of(result["ModerationLabels"]) == expected_entries(truth), name
