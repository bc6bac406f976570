"""The Ray task that moderates one segment: decode its sample frames, classify them in the
shared pool, and return plain FrameScores. It reads the video itself (a path or a presigned
URL), so frames never pass through the API host.

A classify call whose inference actor died (or is restarting) is retried on the next actor of
the pool (engine/cluster/retry.py); re-running the whole task after a worker death is Ray's job.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import ray

from engine.cluster.process_stats import peak_rss_mb
from engine.cluster.retry import classify_with_retries
from engine.results.types import FrameScores
from engine.video import decode_segment, probe_video
from engine.video.types import FrameBatch, Segment, VideoError, VideoProbe


@dataclass(frozen=True)
class SegmentOutcome:
    """What one segment task returns: its scores and where/how fast it ran."""

    segment_index: int
    scores: list[FrameScores]
    node_id: str
    decode_s: float
    classify_s: float
    worker_pid: int
    worker_peak_rss_mb: float


def unique_frames(batch: FrameBatch) -> FrameBatch:
    """Drop repeats: two sample times can select the same frame of a low-frame-rate video."""
    keep, seen = [], set()
    for position, timestamp in enumerate(batch.timestamps_ms):
        if timestamp not in seen:
            seen.add(timestamp)
            keep.append(position)
    if len(keep) == len(batch):
        return batch
    return FrameBatch(
        frames=batch.frames[keep],
        timestamps_ms=[batch.timestamps_ms[i] for i in keep],
        sample_times_ms=[batch.sample_times_ms[i] for i in keep] if batch.sample_times_ms else [],
    )


def moderate_segment(
    source: str,
    probe: VideoProbe,
    segment: Segment,
    sample_interval_ms: int,
    input_size: tuple[int, int],
    decode_mode: str,
    actor,
    decode_threads: int = 1,
    spare_actors: Sequence = (),
    hwaccel: str = "auto",
) -> SegmentOutcome:
    """Decode one segment and classify its sampled frames through `actor` (or, should it die,
    through the `spare_actors` of the same pool)."""
    started = time.perf_counter()
    batch = unique_frames(
        decode_segment(
            source, probe, segment, sample_interval_ms, input_size, mode=decode_mode,
            threads=decode_threads, hwaccel=hwaccel,
        )
    )
    decoded = time.perf_counter()
    scores: list[FrameScores] = []
    if len(batch):
        frames = ray.put(batch.frames)  # one copy in the object store, however many attempts
        confidences = classify_with_retries(
            lambda target: ray.get(target.classify.remote(frames)), [actor, *spare_actors]
        )
        scores = [
            FrameScores(timestamp_ms=int(timestamp), confidences=np.asarray(row, dtype=np.float32))
            for timestamp, row in zip(batch.timestamps_ms, confidences)
        ]
    return SegmentOutcome(
        segment_index=segment.index,
        scores=scores,
        node_id=ray.get_runtime_context().get_node_id(),
        decode_s=decoded - started,
        classify_s=time.perf_counter() - decoded,
        worker_pid=os.getpid(),
        worker_peak_rss_mb=peak_rss_mb(),
    )


def probe_remote(source: str) -> VideoProbe:
    """Probe in a worker, so the API host never reads the whole object."""
    return probe_video(source)


__all__ = ["SegmentOutcome", "VideoError", "moderate_segment", "probe_remote", "unique_frames"]
