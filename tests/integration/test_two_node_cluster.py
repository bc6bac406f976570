"""Distribution: one video's segments run on both nodes of a two-node Ray cluster simulated
on this machine, and the result equals the single-node run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from engine.api.wire import detection_to_wire
from engine.config import EngineSettings
from engine.local_runner import LocalRunner
from tests.media import make_colour_video

pytestmark = [pytest.mark.integration, pytest.mark.ray, pytest.mark.slow]

SEQUENCE = [("red", 2.5), ("green", 2.5), ("blue", 3.0), ("white", 2.0), ("magenta", 2.0)]


def test_segments_spread_over_two_nodes_with_the_same_result(ray_session, test_double_model, tmp_path):
    path = tmp_path / "colours.mp4"
    make_colour_video(path, SEQUENCE, size=(96, 64), gop_s=1.0)
    segment_length_s = 1.0

    environment = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")  # loopback addresses only
    completed = subprocess.run(
        [sys.executable, "-m", "tests.integration.two_node_driver", str(path), test_double_model,
         str(segment_length_s)],
        capture_output=True, text=True, timeout=240, env=environment, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    two_nodes = json.loads(completed.stdout.strip().splitlines()[-1])

    single = LocalRunner(EngineSettings(
        model=test_double_model, segment_length_s=segment_length_s, inference_actor_cpus=0
    ))
    try:
        result = single.moderate(str(path))
    finally:
        single.shutdown()

    assert len(two_nodes["cluster_nodes"]) == 2
    assert set(two_nodes["segment_nodes"].values()) == set(two_nodes["cluster_nodes"])
    assert two_nodes["detections"] == [detection_to_wire(d) for d in result.detections]
    assert len(two_nodes["detections"]) > 0
