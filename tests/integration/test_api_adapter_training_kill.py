"""SIGKILL `modengine serve` (and its Ray) while an adapter trains, start it again: the version
ends TRAINING_COMPLETED, or TRAINING_FAILED with a StatusMessage; never stuck
TRAINING_IN_PROGRESS. Real cluster runner (Ray), colour test double model, embedded store.
"""

from __future__ import annotations

import sqlite3
import time

import pytest

from tests.integration.api_fixtures import ServerProcess, rekognition_client, server_env
from tests.integration.test_api_adapters import (
    LABEL,
    create_version,
    line,
    new_project,
    picture,
    wait_trained,
)

pytestmark = [pytest.mark.integration, pytest.mark.ray, pytest.mark.slow]

IMAGES = 100
"""Of each kind: enough that the training runs for a while after it has started."""


def training_state(database, arn: str) -> tuple[str, int]:
    """(status, trainings started) of a version, read straight from the server's store."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
        return connection.execute(
            "SELECT status, attempts FROM project_versions WHERE version_arn = ?", (arn,)
        ).fetchone()


def test_a_server_killed_during_training_finishes_or_fails_the_version_after_restart(tmp_path):
    data_dir = tmp_path / "data"
    images = data_dir / "objects" / "data"
    images.mkdir(parents=True)
    lines = []
    for number in range(IMAGES):
        (images / f"p{number}.png").write_bytes(picture("red", number))
        (images / f"n{number}.png").write_bytes(picture(("green", "blue")[number % 2], 1000 + number))
        lines += [line("data", f"p{number}.png", [LABEL]), line("data", f"n{number}.png", [])]
    (images / "train.manifest").write_text("\n".join(lines) + "\n")
    env = server_env(data_dir)
    log_path = tmp_path / "server.log"

    first_life = ServerProcess(data_dir, env, [], log_path).start()
    try:
        client = rekognition_client(first_life.url)
        project = new_project(client, "killed")
        version = create_version(client, project, "v1")
        deadline = time.monotonic() + 60
        while True:  # kill once the training has started, not before
            status, attempts = training_state(data_dir / "jobs.sqlite3", version)
            assert status == "TRAINING_IN_PROGRESS", "the training ended before the kill"
            if attempts >= 1:
                break
            assert time.monotonic() < deadline, first_life.log_tail()
            time.sleep(0.005)
    finally:
        first_life.kill()
    assert training_state(data_dir / "jobs.sqlite3", version)[0] == "TRAINING_IN_PROGRESS"

    second_life = ServerProcess(data_dir, env, [], log_path).start()
    try:
        client = rekognition_client(second_life.url)
        described = wait_trained(client, project, version, 120, second_life.log_tail)
    finally:
        second_life.stop()
    assert described["Status"] in ("TRAINING_COMPLETED", "TRAINING_FAILED")
    assert described.get("StatusMessage")
    if described["Status"] == "TRAINING_COMPLETED":
        assert described["EvaluationResult"]["F1Score"] > 0.9
    print("after the restart:", described["Status"], described["StatusMessage"])
