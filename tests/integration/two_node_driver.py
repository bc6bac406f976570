"""Runs one video on a two-node Ray cluster simulated on this machine and prints JSON.

Started as a subprocess by test_two_node_cluster.py, because a process can join only one Ray
cluster and the test session already holds its own single-node Ray.

    python -m tests.integration.two_node_driver VIDEO MODEL SEGMENT_LENGTH_S
"""

from __future__ import annotations

import json
import sys

import ray
from ray.cluster_utils import Cluster

from engine.api.wire import detection_to_wire
from engine.config import EngineSettings
from engine.local_runner import LocalRunner, result_options


def main(video: str, model: str, segment_length_s: float) -> None:
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False},
    )
    try:
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        settings = EngineSettings(
            model=model,
            segment_length_s=segment_length_s,
            ray_address=cluster.address,
            inference_actor_cpus=0,
            max_batch_wait_ms=1,
        )
        runner = LocalRunner(settings)
        run = runner.run(video, result_options(settings))
        result = run.result
        node_ids = sorted({node["NodeID"] for node in ray.nodes() if node["Alive"]})
        print(json.dumps({
            "cluster_nodes": node_ids,
            "segment_nodes": {o.segment_index: o.node_id for o in run.outcomes},
            "detections": [detection_to_wire(d) for d in result.detections],
        }))
        runner.shutdown()
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
