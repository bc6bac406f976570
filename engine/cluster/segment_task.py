"""The Ray task that runs one segment: decode its sample frames, classify them in the shared
pool, and return their raw confidences (a SegmentOutcome). It reads the video itself (a path or
a presigned URL), so frames never pass through the API host.

A classify call whose inference actor died (or is restarting) is retried on the next actor of
the pool (engine/cluster/retry.py); re-running the whole task after a worker death is Ray's job.
"""

from __future__ import annotations

import os
import time

import numpy as np
import ray

from engine.cluster.process_stats import peak_rss_mb
from engine.cluster.retry import classify_with_retries
from engine.cluster.types import SegmentOutcome, SegmentTask
from engine.video import decode_sampled_frames, probe_video
from engine.video.types import VideoProbe


def moderate_segment(task: SegmentTask) -> SegmentOutcome:
    """Decode one segment and classify its sampled frames through the task's actors."""
    started = time.perf_counter()
    batch = decode_sampled_frames(task.decode)
    decoded = time.perf_counter()
    confidences = np.empty((0, 0), dtype=np.float32)
    if len(batch):
        frames = ray.put(batch.frames)  # one copy in the object store, however many attempts
        confidences = np.asarray(
            classify_with_retries(
                lambda target: ray.get(
                    target.classify_adapted.remote(frames, task.adapter_path)
                    if task.adapter_path else target.classify.remote(frames)),
                [task.actor, *task.spare_actors],
            ),
            dtype=np.float32,
        )
    return SegmentOutcome(
        segment_index=task.decode.segment.index,
        timestamps_ms=tuple(int(timestamp) for timestamp in batch.timestamps_ms),
        confidences=confidences,
        node_id=ray.get_runtime_context().get_node_id(),
        decode_s=decoded - started,
        classify_s=time.perf_counter() - decoded,
        worker_pid=os.getpid(),
        worker_peak_rss_mb=peak_rss_mb(),
    )


def probe_remote(source: str) -> VideoProbe:
    """Probe in a worker, so the API host never reads the whole object."""
    return probe_video(source)


__all__ = ["moderate_segment", "probe_remote"]
