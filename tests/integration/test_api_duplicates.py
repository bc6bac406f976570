"""50 concurrent StartContentModeration calls with one ClientRequestToken make exactly one job."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.config import Config

from engine.api.settings import ApiSettings
from tests.doubles.scripted_runner import write_script
from tests.integration.api_fixtures import rekognition_client, scripted_server

pytestmark = pytest.mark.integration

CALLERS = 50
TOKEN = "duplicate-start-1"


def test_concurrent_duplicate_starts_create_one_job(tmp_path):
    write_script(tmp_path / "objects" / "videos" / "clip.json", 3000, {1000: {"Weapons": 90.0}})
    limits = ApiSettings(start_burst=CALLERS * 2)
    with scripted_server(tmp_path, limits, max_concurrent_jobs=CALLERS) as (url, jobs, _):
        config = Config(retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=4)
        clients = [rekognition_client(url, config=config) for _ in range(CALLERS)]
        barrier = threading.Barrier(CALLERS)

        def start(client) -> str:
            barrier.wait(timeout=30)
            return client.start_content_moderation(
                Video={"S3Object": {"Bucket": "videos", "Name": "clip.json"}},
                ClientRequestToken=TOKEN,
                MinConfidence=60,
            )["JobId"]

        with ThreadPoolExecutor(CALLERS) as pool:
            job_ids = list(pool.map(start, clients))
        assert len(job_ids) == CALLERS and len(set(job_ids)) == 1
        assert jobs.executor.wait_idle(20)
        page = clients[0].get_content_moderation(JobId=job_ids[0])
        assert page["JobStatus"] == "SUCCEEDED"
        with sqlite3.connect(tmp_path / "jobs.sqlite3") as database:
            rows = database.execute(
                "SELECT job_id FROM jobs WHERE client_token = ?", (TOKEN,)
            ).fetchall()
            total = database.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        assert rows == [(job_ids[0],)] and total == 1
