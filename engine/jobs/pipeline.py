"""One job, start to finish, through the cluster runner: probe, plan, run missing segments, merge.

Each finished segment's thresholded detections (and its sample times) are stored the moment the
runner reports it, so a resumed job runs only the segments still missing. When every segment is
in, the stored segment outputs go through the one assembler (engine/results/assemble.py, as for
the CLI, the client and batch) and the final rows for both aggregations and both sort orders
are written in one transaction. Errors propagate to the caller (engine/jobs/executor.py),
which turns them into FAILED.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from engine.cluster import (
    AdapterTrainingRequest,
    AdapterTrainingResult,
    SegmentOutcome,
    adapter_file,
)
from engine.config import EngineSettings
from engine.jobs.store import JobStore
from engine.jobs.types import JobRecord
from engine.metrics import EngineMetrics
from engine.results import (
    AGGREGATIONS,
    ResultOptions,
    SegmentDetections,
    assemble_detections,
    segment_detections,
    sort_detections,
)
from engine.storage.base import ObjectStore
from engine.video import check_duration
from engine.video.types import Segment, VideoError, VideoProbe

log = logging.getLogger(__name__)


class SegmentRunner(Protocol):
    """What jobs needs from engine.cluster.ClusterRunner (or a test double)."""

    taxonomy: object
    model_info: object

    def probe(self, source: str) -> VideoProbe: ...

    def plan(self, probe: VideoProbe) -> list[Segment]: ...

    def run_segments(
        self,
        source: str,
        probe: VideoProbe,
        segments: Sequence[Segment],
        on_segment_done: Callable[[Segment, SegmentOutcome], None],
        decode_mode: str | None = None,
        adapter_path: str | None = None,
    ) -> Sequence[SegmentOutcome]: ...

    def classify_frames(self, frames: np.ndarray, adapter_path: str | None = None
                        ) -> np.ndarray: ...

    def taxonomy_for(self, adapter_path: str | None) -> object: ...

    adaptable_taxonomy: object
    """Every label an adapter may be trained for."""

    def train_adapter(self, request: AdapterTrainingRequest) -> AdapterTrainingResult: ...

    def inference_actors(self) -> list:
        """The pool's actor handles (opaque here), where media analysis jobs classify."""
        ...

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
        adapter_path = (str(adapter_file(settings.data_dir, job.adapter_arn))
                        if job.adapter_arn else None)
        taxonomy = runner.taxonomy_for(adapter_path) if adapter_path else runner.taxonomy

        def on_segment_done(segment: Segment, outcome: SegmentOutcome) -> None:
            output = segment_detections(
                taxonomy, outcome.timestamps_ms, outcome.confidences, job.min_confidence,
                runner.model_info.content_types,
            )
            store.save_segment_result(
                job.job_id, segment.index, output.sample_timestamps_ms, output.detections
            )
            if metrics is not None:
                metrics.segment_done(len(outcome.timestamps_ms))

        extra = {"adapter_path": adapter_path} if adapter_path else {}
        runner.run_segments(
            source, probe, pending, on_segment_done=on_segment_done, decode_mode=job.decode_mode,
            **extra,
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
    """Assemble the stored segment outputs into final rows and mark the job SUCCEEDED."""
    detections, sample_timestamps_ms = store.segment_outputs(job.job_id)
    outputs = [SegmentDetections(tuple(sample_timestamps_ms), tuple(detections))]
    by_time, by_name = {}, {}
    for aggregate_by in AGGREGATIONS:
        options = ResultOptions(
            job.min_confidence, "TIMESTAMP", aggregate_by, settings.sample_interval_ms
        )
        by_time[aggregate_by] = assemble_detections(outputs, probe.metadata.duration_ms, options)
        # The same Detection objects in NAME order: each row is stored once with both positions.
        by_name[aggregate_by] = sort_detections(by_time[aggregate_by], "NAME")
    return store.complete_job(
        job.job_id, by_time=by_time, by_name=by_name, retention_s=settings.result_retention_s
    )
