"""One job, start to finish, through the cluster runner: probe, plan, run missing segments, merge.

Each finished segment's thresholded detections (and its sample times) are stored the moment the
runner reports it, so a resumed job runs only the segments still missing. When every segment is
in, the final rows for both aggregations and both sort orders are written in one transaction.
Errors propagate to the caller (engine/jobs/executor.py), which turns them into FAILED.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from engine.config import EngineSettings
from engine.jobs.store import JobStore
from engine.jobs.types import JobRecord
from engine.metrics import EngineMetrics
from engine.results import aggregate_segments, build_detections, sort_by_name, sort_by_timestamp
from engine.results.types import FrameScores
from engine.storage.base import ObjectStore
from engine.video.limits import check_duration
from engine.video.types import Segment, VideoError, VideoProbe

log = logging.getLogger(__name__)


class SegmentRunner(Protocol):
    """What jobs needs from engine.cluster.runner.VideoModerationRunner (or a test double)."""

    taxonomy: object
    model_info: object

    def probe(self, source: str) -> VideoProbe: ...

    def plan(self, probe: VideoProbe) -> list[Segment]: ...

    def run_segments(
        self,
        source: str,
        probe: VideoProbe,
        segments: Sequence[Segment],
        on_segment_done,
        decode_mode: str | None = None,
    ) -> None: ...

    def classify_frames(self, frames: np.ndarray) -> np.ndarray: ...

    def shutdown(self) -> None: ...


def process_job(
    job: JobRecord,
    store: JobStore,
    objects: ObjectStore,
    runner: SegmentRunner,
    settings: EngineSettings,
    metrics: EngineMetrics | None = None,
) -> JobRecord:
    """Run (or resume) a job to SUCCEEDED; raises on any failure so the caller records FAILED.

    `metrics` counts each finished segment and its classified frames as the runner reports it.
    """
    store.mark_running(job.job_id)
    source = objects.source_for(job.video)
    probe = runner.probe(source)
    check_duration(probe.metadata, settings.max_duration_s)
    store.save_metadata(job.job_id, probe.metadata)
    store.save_plan(job.job_id, runner.plan(probe))
    pending = store.pending_segments(job.job_id)
    if pending:
        log.info("job %s: running %d segment(s)", job.job_id, len(pending))

        def on_segment_done(segment: Segment, scores: list[FrameScores]) -> None:
            detections = build_detections(runner.taxonomy, scores, job.min_confidence)
            store.save_segment_result(
                job.job_id, segment.index, [s.timestamp_ms for s in scores], detections
            )
            if metrics is not None:
                metrics.segment_done(len(scores))

        runner.run_segments(
            source, probe, pending, on_segment_done=on_segment_done, decode_mode=job.decode_mode
        )
    missing = store.pending_segments(job.job_id)
    if missing:
        raise VideoError(
            f"{len(missing)} segment(s) of the video produced no result (first: {missing[0].index})"
        )
    return _complete(job, probe, store, settings)


def _complete(
    job: JobRecord, probe: VideoProbe, store: JobStore, settings: EngineSettings
) -> JobRecord:
    """Merge the stored segment outputs into final rows and mark the job SUCCEEDED."""
    detections, sample_timestamps_ms = store.segment_outputs(job.job_id)
    video_end_ms = probe.metadata.duration_ms  # as engine.cluster.runner.moderate does
    timestamps = sort_by_timestamp(detections)
    segments = aggregate_segments(
        timestamps,
        settings.sample_interval_ms,
        sample_timestamps_ms=sample_timestamps_ms or None,
        video_end_ms=video_end_ms,
    )
    segments = sort_by_timestamp(segments)
    return store.complete_job(
        job.job_id,
        by_time={"TIMESTAMPS": timestamps, "SEGMENTS": segments},
        by_name={"TIMESTAMPS": sort_by_name(timestamps), "SEGMENTS": sort_by_name(segments)},
        retention_s=settings.result_retention_s,
    )
