"""Ray orchestration: segment tasks and the shared inference actor pool. It runs segments and
returns their outcomes (raw confidences per sampled frame); it does not assemble results.

Knows about video, models and the settings; knows nothing about results, jobs, HTTP or S3
(tests/unit/test_import_graph.py holds it to that). Callers outside the package use the names
below, imported from `engine.cluster`; they load lazily, so asking for an error class or a
data type never imports Ray.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "ClusterRunner": "engine.cluster.runner",
    "ClusterError": "engine.cluster.failures",
    "RunnerStoppedError": "engine.cluster.failures",
    "describe_exception": "engine.cluster.failures",
    "failure_message": "engine.cluster.failures",
    "failure_metric_type": "engine.cluster.failures",
    "root_cause": "engine.cluster.retry",
    "SegmentOutcome": "engine.cluster.types",
    "AdapterExample": "engine.cluster.types",
    "AdapterTrainingRequest": "engine.cluster.types",
    "AdapterTrainingResult": "engine.cluster.types",
    "train_adapter": "engine.cluster.adapter_training",
    "SegmentTask": "engine.cluster.types",
    "segment_decode_request": "engine.cluster.types",
    "actor_placement": "engine.cluster.inference",
    "load_pool_classifier": "engine.cluster.inference",
    "load_classifier": "engine.cluster.model_loader",
    "FrameScorer": "engine.cluster.scoring",
    "adapter_file": "engine.cluster.scoring",
    "local_adapter_path": "engine.cluster.scoring",
}

__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'engine.cluster' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
