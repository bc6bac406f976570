"""The Ray task that runs one segment: decode its sample frames, classify them in the shared
pool, and return their raw confidences (a SegmentOutcome). It reads the video itself (a path or
a presigned URL), so frames never pass through the API host.

Decoding and classifying overlap: every `chunk_frames` decoded frames go to the inference actor
at once (one object-store copy and one call per chunk) while the decoder goes on, and the
answers are gathered when the segment is decoded, so the actor works while the decoder does.

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
from engine.video.types import FrameBatch, VideoProbe


class _ChunkClassifier:
    """Sends each chunk of frames to the task's actor as it is decoded; `gather` waits for all.

    A chunk's first call goes to the task's actor without waiting; should that actor be dead
    when its answer is fetched, the chunk is re-sent through `classify_with_retries` (the same
    object-store copy, the next actors of the pool), as a whole segment's frames were before.
    """

    def __init__(self, task: SegmentTask) -> None:
        self._task = task
        self._chunks: list[tuple[object, object]] = []  # (frames ref, first call's answer ref)

    def _call(self, actor, frames_ref):
        if self._task.adapter_path:
            return actor.classify_adapted.remote(frames_ref, self._task.adapter_path)
        return actor.classify.remote(frames_ref)

    def submit(self, chunk: FrameBatch) -> None:
        frames_ref = ray.put(chunk.frames)  # one copy in the object store, however many attempts
        self._chunks.append((frames_ref, self._call(self._task.actor, frames_ref)))

    def gather(self) -> np.ndarray:
        """(frames, columns) confidences of every chunk, in the order they were submitted."""
        if not self._chunks:
            return np.empty((0, 0), dtype=np.float32)
        actors = [self._task.actor, *self._task.spare_actors]
        parts = [self._answer(frames_ref, first, actors) for frames_ref, first in self._chunks]
        return np.concatenate([np.asarray(part, dtype=np.float32) for part in parts], axis=0)

    def _answer(self, frames_ref, first, actors) -> np.ndarray:
        pending = [first]

        def attempt(target):
            answer = pending.pop() if pending else self._call(target, frames_ref)
            return ray.get(answer)

        return classify_with_retries(attempt, actors)


def moderate_segment(task: SegmentTask) -> SegmentOutcome:
    """Decode one segment and classify its sampled frames through the task's actors."""
    started = time.perf_counter()
    classifier = _ChunkClassifier(task)
    batch = decode_sampled_frames(task.decode, on_chunk=classifier.submit,
                                  chunk_frames=task.chunk_frames)
    decoded = time.perf_counter()
    confidences = classifier.gather()
    if len(confidences) != len(batch):
        raise RuntimeError(f"{len(confidences)} scores came back for {len(batch)} frames")
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
