"""Fixtures for the API integration tests (helpers live in api_fixtures.py)."""

from __future__ import annotations

import pytest

from engine.server import build_server_app
from tests.doubles.scripted_runner import ScriptedRunnerDouble
from tests.integration.api_fixtures import in_process_server, moto_server, rekognition_client


@pytest.fixture(scope="module")
def moto_endpoint():
    with moto_server() as endpoint:
        yield endpoint


class ScriptedApi:
    """An in-process API server over the local store, driven by the scripted runner double."""

    def __init__(self, url, jobs, runner, settings):
        self.url, self.jobs, self.runner, self.settings = url, jobs, runner, settings
        self.client = rekognition_client(url)
        self.objects_dir = settings.data_dir / "objects"


@pytest.fixture(scope="module")
def scripted_api(tmp_path_factory):
    from engine.config import EngineSettings

    settings = EngineSettings(
        data_dir=tmp_path_factory.mktemp("scripted-api"),
        max_object_bytes=1_000_000,
        max_concurrent_jobs=2,
    )
    runner = ScriptedRunnerDouble(sample_interval_ms=settings.sample_interval_ms)
    app, jobs = build_server_app(settings, runner_factory=lambda: runner)
    with in_process_server(app) as url:
        yield ScriptedApi(url, jobs, runner, settings)
