"""Helpers for the API integration tests: a moto S3/SNS/SQS server, the API server in-process
(scripted runner double, no Ray) or as a subprocess (real cluster runner), a webhook receiver,
and boto3 clients pointed at them.

Run as `python -m tests.integration.api_fixtures serve ...` it is the server subprocess's entry
point: it builds settings the normal way (MODENGINE_* env) and passes notification settings
explicitly, since those EngineSettings fields may not exist yet.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import boto3
import httpx
from botocore.config import Config

from engine.demo import CompletionReceiver, start_server_thread

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_DOUBLE_MODEL = "tests.doubles.colour_classifier:ColourTestDoubleClassifier"
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/AmazonRekognitionServiceRole"
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})
"""A client config for tests that assert on the first answer: botocore retries nothing."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Servers started by these helpers, by base URL -> their generated credentials file.
_CREDENTIALS_BY_URL: dict[str, Path] = {}
LEGACY_TEST_KEY = ("x", "y")
"""A second key of the default account, added to every test server's credentials file so that
clients built with explicit x/y keys (older tests) still authenticate."""


def register_server_credentials(url: str, credentials_file: Path) -> None:
    """Remember a server's credentials (and give it the legacy test key)."""
    from engine.api.keys import ACCOUNT_ENTRY, read_default_key

    _CREDENTIALS_BY_URL[url.rstrip("/")] = Path(credentials_file)
    text = Path(credentials_file).read_text(encoding="utf-8")
    if "[fixture-legacy]" not in text:
        account = read_default_key(credentials_file).account
        key_id, secret = LEGACY_TEST_KEY
        with open(credentials_file, "a", encoding="utf-8") as handle:
            handle.write(
                f"\n[fixture-legacy]\naws_access_key_id = {key_id}\n"
                f"aws_secret_access_key = {secret}\n{ACCOUNT_ENTRY} = {account}\n"
            )


def server_keys(endpoint_url: str) -> tuple[str, str]:
    """The [default] key of the server at this URL (the legacy key if it is not ours)."""
    from engine.api.keys import read_default_key

    credentials_file = _CREDENTIALS_BY_URL.get(endpoint_url.rstrip("/"))
    if credentials_file is None:
        return LEGACY_TEST_KEY
    key = read_default_key(credentials_file)
    return key.access_key_id, key.secret_access_key


def write_account_keys(path: Path, keys: tuple[str, str], account: str,
                       profile: str = "other") -> Path:
    """A credentials file with one more profile: `keys` acting for `account` (for the tests of
    what another account may and may not see)."""
    path.write_text(
        f"[{profile}]\n"
        f"aws_access_key_id = {keys[0]}\naws_secret_access_key = {keys[1]}\n"
        f"modengine_account = {account}\n"
    )
    return path


def owned_bucket(data_dir: Path, bucket: str, account: str) -> Path:
    """A new bucket of the embedded store in `data_dir`, recorded as `account`'s (as
    `modengine put --account` records it); returns its folder, to write objects into."""
    from engine.storage import LocalObjectStore

    LocalObjectStore(Path(data_dir) / "objects").claim_bucket(bucket, account)
    folder = Path(data_dir) / "objects" / bucket
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def rekognition_client(endpoint_url: str, config=None, keys: tuple[str, str] | None = None):
    """A boto3 client signing with the server's generated [default] key; no retries
    (NO_RETRIES) unless `config` says otherwise."""
    key_id, secret = keys or server_keys(endpoint_url)
    return boto3.client(
        "rekognition",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=config or NO_RETRIES,
    )


def aws_client(service: str, endpoint_url: str):
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )


@contextmanager
def moto_server():
    """A real S3/SNS/SQS endpoint on 127.0.0.1 (moto), stopped on exit."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@contextmanager
def in_process_server(app):
    """Serve an ASGI app with uvicorn in a thread; yields its base URL."""
    port = free_port()
    server, thread = start_server_thread(app, port, timeout_s=20)
    url = f"http://127.0.0.1:{port}"
    credentials_file = getattr(app.state, "credentials_file", None)
    if credentials_file is not None:
        register_server_credentials(url, credentials_file)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@contextmanager
def scripted_server(data_dir: Path, api_settings=None, **settings_overrides):
    """An in-process API server over the local store in `data_dir`, run by the scripted runner
    double (no Ray); yields (url, job_system, settings)."""
    from engine.config import EngineSettings
    from engine.notify import NotifySettings
    from engine.server import build_server_app
    from tests.doubles.scripted_runner import ScriptedRunnerDouble

    settings = EngineSettings(data_dir=Path(data_dir), **settings_overrides)
    runner = ScriptedRunnerDouble(sample_interval_ms=settings.sample_interval_ms)
    notify = NotifySettings(sns_endpoint="http://127.0.0.1:9", max_attempts=1, timeout_s=1)
    app, jobs = build_server_app(
        settings, runner_factory=lambda: runner, notify_settings=notify, api_settings=api_settings
    )
    with in_process_server(app) as url:
        yield url, jobs, settings


class WebhookReceiver(CompletionReceiver):
    """A local HTTP endpoint recording every POST (headers + body) it receives."""

    def __init__(self) -> None:
        super().__init__(path="/hook")


class ServerProcess:
    """The API server as a child process with the real cluster runner (starts Ray on first job)."""

    def __init__(
        self, data_dir: Path, env: dict[str, str], args: list[str], log_path: Path
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = env
        self._args = args
        self._log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 60) -> ServerProcess:
        env = {**os.environ, **self._env, "PYTHONPATH": str(REPO_ROOT)}
        command = [
            sys.executable,
            "-m",
            "tests.integration.api_fixtures",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            *self._args,
        ]
        log = open(self._log_path, "ab")  # noqa: SIM115 - the child process keeps writing to it
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode}: {self.log_tail()}"
                )
            try:
                httpx.get(self.url + "/ready", timeout=1)
                register_server_credentials(self.url, self.data_dir / "credentials")
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the server and everything in its session (its Ray processes, if it started one)."""
        if self.process is None:
            return
        import psutil

        session_members = []
        for candidate in psutil.process_iter(["pid"]):
            try:
                if os.getsid(candidate.pid) == self.process.pid:
                    session_members.append(candidate.pid)
            except (ProcessLookupError, PermissionError, psutil.Error):
                continue
        for pid in [self.process.pid, *session_members]:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        """SIGTERM first (uvicorn shuts down and the runner stops its Ray), then make sure."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self._log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def server_env(data_dir: Path, s3_endpoint: str | None = None, **extra: str) -> dict[str, str]:
    """Small settings for a test server subprocess: the colour test double, 2 CPUs, 1 actor."""
    env = {
        "MODENGINE_DATA_DIR": str(data_dir),
        "MODENGINE_MODEL": TEST_DOUBLE_MODEL,
        "MODENGINE_RAY_NUM_CPUS": "2",
        "MODENGINE_INFERENCE_ACTORS": "1",
        "MODENGINE_SEGMENT_LENGTH_S": "2",
        "RAY_AUTH_MODE": "disabled",
        # Never join a Ray cluster someone else started on this machine.
        "RAY_ADDRESS": "local",
    }
    if s3_endpoint:
        env.update(
            MODENGINE_S3_ENDPOINT=s3_endpoint,
            MODENGINE_S3_ACCESS_KEY="x",
            MODENGINE_S3_SECRET_KEY="y",
        )
    env.update(extra)
    return env


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="api_fixtures")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sns-endpoint")
    parser.add_argument("--webhook", action="append", default=[], help="TOPIC_ARN=URL")
    options = parser.parse_args(argv)

    from engine.config import load_settings
    from engine.notify import NotifySettings, parse_webhooks
    from engine.server import serve

    settings = load_settings(data_dir=Path(options.data_dir))
    notify = NotifySettings(
        sns_endpoint=options.sns_endpoint,
        sns_access_key="x",
        sns_secret_key="y",
        webhooks=parse_webhooks(",".join(options.webhook)),
        max_attempts=3,
        initial_backoff_s=0.2,
    )
    serve(settings, "127.0.0.1", options.port, notify_settings=notify)


if __name__ == "__main__":
    main()


def expected_entries(
    truth, min_confidence: float = 50.0, sample_interval_ms: int = 1000
) -> list[tuple[int, str, int]]:
    """(Timestamp, Name, TaxonomyLevel) the colour test double must yield, in TIMESTAMP order."""
    from tests.doubles.colour_classifier import expected_labels

    entries = []
    for sample_ms in range(0, truth.duration_ms, sample_interval_ms):
        for name, level, confidence in expected_labels(truth.colour_at(sample_ms)):
            if confidence >= min_confidence:
                entries.append((truth.frame_time_at(sample_ms), name, level))
    return sorted(entries)


def entries_of(detections: list[dict]) -> list[tuple[int, str, int]]:
    return [
        (d["Timestamp"], d["ModerationLabel"]["Name"], d["ModerationLabel"]["TaxonomyLevel"])
        for d in detections
    ]


def wait_for_job(
    client, job_id: str, timeout_s: float = 120, **members
) -> tuple[list[dict], list[dict]]:
    """Poll until the job ends; returns (status pages seen while polling, every page of the result)."""
    polled, deadline = [], time.monotonic() + timeout_s
    while True:
        page = client.get_content_moderation(JobId=job_id, **members)
        polled.append(page)
        if page["JobStatus"] != "IN_PROGRESS":
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still IN_PROGRESS after {timeout_s} s")
        time.sleep(0.25)
    pages, token = [], None
    while True:
        extra = {"NextToken": token} if token else {}
        page = client.get_content_moderation(JobId=job_id, **members, **extra)
        pages.append(page)
        token = page.get("NextToken")
        if not token:
            return polled, pages
