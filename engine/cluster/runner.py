"""Runs videos through the cluster: probe, plan keyframe-aligned segments, one Ray task per
segment, frames to the shared inference pool, results back to the caller as segments finish.

The runner owns its Ray connection (a local Ray it starts, or an existing cluster at
`settings.ray_address`) and the inference pool; it knows nothing about HTTP or job storage.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import ray

from engine.cluster.inference import InferencePool
from engine.cluster.segment_task import SegmentOutcome, moderate_segment, probe_remote
from engine.config import EngineSettings
from engine.results import FrameScores, aggregate_segments, build_detections, sort_detections
from engine.results.types import Detection
from engine.video import plan_segments
from engine.video.types import Segment, VideoError, VideoMetadata, VideoProbe
from models.base import ModelInfo, NoModelInstalledError
from models.taxonomy import Taxonomy

log = logging.getLogger(__name__)

SegmentCallback = Callable[[Segment, list[FrameScores]], None]


@dataclass
class ModerationResult:
    """One finished video: what GetContentModeration would return, before paging."""

    metadata: VideoMetadata
    detections: list[Detection]
    model_info: ModelInfo
    frame_count: int
    outcomes: list[SegmentOutcome]


class VideoModerationRunner:
    """Drives videos through Ray; safe to share between jobs (one pool for all of them)."""

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self._owns_ray = False
        self._pool: InferencePool | None = None
        # Jobs run in several threads; Ray and the pool must be started exactly once.
        self._start_lock = threading.RLock()

    # -- connection and pool ------------------------------------------------------------------

    def _ensure_ray(self) -> None:
        with self._start_lock:
            self._init_ray_once()

    def _init_ray_once(self) -> None:
        if ray.is_initialized():
            return
        kwargs: dict = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.getLevelName(self.settings.ray_log_level.upper()),
        }
        if self.settings.ray_address:
            kwargs["address"] = self.settings.ray_address
        else:
            # Start our own Ray (never join whatever cluster happens to run on this machine),
            # listening on loopback only, never on the machine's public interface.
            kwargs["address"] = "local"
            kwargs["_node_ip_address"] = "127.0.0.1"
            if self.settings.ray_num_cpus is not None:
                kwargs["num_cpus"] = self.settings.ray_num_cpus
        ray.init(**kwargs)
        self._owns_ray = True

    @property
    def pool(self) -> InferencePool:
        with self._start_lock:
            if self._pool is None:
                self._ensure_ray()
                try:
                    self._pool = InferencePool(self.settings)
                except ray.exceptions.RayActorError as error:
                    raise _unwrap(error) from error
            return self._pool

    @property
    def taxonomy(self) -> Taxonomy:
        return self.pool.taxonomy

    @property
    def model_info(self) -> ModelInfo:
        return self.pool.model_info

    def shutdown(self) -> None:
        with self._start_lock:
            self._shutdown_locked()

    def _shutdown_locked(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
            self._owns_ray = False

    # -- one video ----------------------------------------------------------------------------

    def probe(self, source: str) -> VideoProbe:
        self._ensure_ray()
        task = ray.remote(probe_remote).options(num_cpus=0, max_retries=1, retry_exceptions=False)
        try:
            return ray.get(task.remote(source))
        except ray.exceptions.RayTaskError as error:
            raise _unwrap(error) from error

    def plan(self, probe: VideoProbe) -> list[Segment]:
        return plan_segments(probe, int(round(self.settings.segment_length_s * 1000)))

    def run_segments(
        self,
        source: str,
        probe: VideoProbe,
        segments: Sequence[Segment],
        on_segment_done: SegmentCallback,
    ) -> list[SegmentOutcome]:
        """Run the given segments, calling `on_segment_done` in this thread as each finishes.

        Returns one SegmentOutcome per segment (node, timings) in completion order.

        At most `max_segments_in_flight` tasks are submitted at once, so a long video never
        floods the cluster (or the inference queue) with decoded frames.
        """
        pool = self.pool
        settings = self.settings
        task = ray.remote(moderate_segment).options(
            num_cpus=settings.segment_task_cpus,
            max_retries=2,
            retry_exceptions=False,
            # Segments are independent decode work: spread them over every node.
            scheduling_strategy="SPREAD",
        )
        waiting = list(segments)
        running: dict = {}
        outcomes: list[SegmentOutcome] = []
        window = self._window()
        try:
            while waiting or running:
                while waiting and len(running) < window:
                    segment = waiting.pop(0)
                    ref = task.remote(
                        source, probe, segment, settings.sample_interval_ms,
                        pool.model_info.input_size, settings.decode_mode, pool.pick(),
                        settings.effective_decode_threads,
                    )
                    running[ref] = segment
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    segment = running.pop(ref)
                    outcome = ray.get(ref)
                    outcomes.append(outcome)
                    on_segment_done(segment, outcome.scores)
        except ray.exceptions.RayError as error:
            for ref in running:
                ray.cancel(ref, force=True)
            raise _unwrap(error) from error
        return outcomes

    def _window(self) -> int:
        if self.settings.max_segments_in_flight:
            return self.settings.max_segments_in_flight
        cpus = int(ray.cluster_resources().get("CPU", 2))
        return max(2, 2 * cpus)

    def moderate(
        self,
        source: str,
        min_confidence: float | None = None,
        sort_by: str = "TIMESTAMP",
        aggregate_by: str = "TIMESTAMPS",
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ModerationResult:
        """The whole video in one call (what the CLI uses): detections sorted and aggregated."""
        min_confidence = self.settings.default_min_confidence if min_confidence is None else min_confidence
        probe = self.probe(source)
        segments = self.plan(probe)
        scores: list[FrameScores] = []
        finished = 0

        def collect(segment: Segment, segment_scores: list[FrameScores]) -> None:
            nonlocal finished
            scores.extend(segment_scores)
            finished += 1
            if on_progress:
                on_progress(finished, len(segments))

        if on_progress:
            on_progress(0, len(segments))
        outcomes = self.run_segments(source, probe, segments, collect)
        scores.sort(key=lambda frame: frame.timestamp_ms)
        detections = build_detections(self.taxonomy, scores, min_confidence)
        if aggregate_by == "SEGMENTS":
            detections = aggregate_segments(
                detections,
                self.settings.sample_interval_ms,
                sample_timestamps_ms=[frame.timestamp_ms for frame in scores],
                video_end_ms=probe.metadata.duration_ms,
            )
        return ModerationResult(
            metadata=probe.metadata,
            detections=sort_detections(detections, sort_by),
            model_info=self.model_info,
            frame_count=len(scores),
            outcomes=outcomes,
        )


def _unwrap(error: Exception) -> Exception:
    """Turn Ray's wrappers back into our own errors so callers see VideoError / NoModelInstalledError."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, (VideoError, NoModelInstalledError)):
        return cause
    if isinstance(error, ray.exceptions.RayActorError):
        text = str(error)
        if "NoModelInstalledError" in text:
            return NoModelInstalledError(text.split("NoModelInstalledError:")[-1].strip().splitlines()[0])
        return RuntimeError(f"an inference actor failed: {text.splitlines()[0]}")
    if isinstance(error, ray.exceptions.WorkerCrashedError):
        return RuntimeError("a segment worker crashed repeatedly while decoding this video")
    return error
