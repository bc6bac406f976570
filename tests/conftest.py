"""Shared fixtures: one Ray instance per test session, generated videos, the test-double model.

Unit tests never touch these Ray fixtures; integration tests ask for `ray_session`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DOUBLE_MODEL = "tests.doubles.colour_classifier:ColourTestDoubleClassifier"


def _export_repo_on_pythonpath() -> None:
    """Ray workers and server subprocesses must import `tests.doubles` like this process does."""
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(REPO_ROOT) not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *parts])
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))


_export_repo_on_pythonpath()
# Every Ray the tests start (here, in drivers and in server subprocesses) binds to loopback only.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def pytest_collection_modifyitems(config, items):
    """Skip tests whose capability marker (`gpu`, `bf16`: tests/capabilities.py) this machine
    lacks, saying why; MODENGINE_REQUIRE_<MARKER>=1 turns that skip into a failure."""
    from tests.capabilities import CAPABILITIES, machine_capabilities, require_switch, skip_reason

    cpu, has_cuda, cuda_bf16 = machine_capabilities()
    for capability in CAPABILITIES:
        reason = skip_reason(capability.marker, cpu, has_cuda, cuda_bf16)
        if reason is None or os.environ.get(require_switch(capability.marker)) == "1":
            continue
        skip = pytest.mark.skip(
            reason=f"{reason} (set {require_switch(capability.marker)}=1 to fail instead)")
        for item in items:
            if capability.marker in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def triton_device(monkeypatch) -> str:
    """Where the Triton kernels run in this test: "cuda" on a GPU node, else "cpu" under
    Triton's interpreter (TRITON_INTERPRET=1, set before kernels.yuv_triton is first imported;
    only on machines without CUDA, so a GPU node never interprets torch.compile's kernels)."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    from kernels import yuv_triton

    if not yuv_triton.kernel_is_interpreted():
        pytest.fail("kernels.yuv_triton was imported before TRITON_INTERPRET was set")
    return "cpu"


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray for the whole session (2 CPUs), shut down at the end by its own handle."""
    import ray

    if ray.is_initialized():
        yield ray
        return
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def test_double_model() -> str:
    """The settings value that selects the colour test-double classifier."""
    return TEST_DOUBLE_MODEL
