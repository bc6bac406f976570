"""The one assembler: segment outputs (streamed from the cluster or read back from the job
store) -> a video's detections, merged, aggregated and sorted.

Every path that produces a result ends here: a job (engine/jobs/pipeline.py), the local runner
the CLI and the notebook client share (engine/local_runner.py) and batch (engine/batch), so
they cannot drift apart. Pure: no I/O, no wire shapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from engine.results.aggregate import aggregate_segments
from engine.results.detections import (
    build_detections,
    reported_content_types,
    sort_by_timestamp,
    sort_detections,
)
from engine.results.types import (
    Detection,
    FrameScores,
    ModerationResult,
    ResultOptions,
    SegmentDetections,
)
from engine.video.types import VideoMetadata
from models.base import ModelInfo
from models.taxonomy import Taxonomy


def segment_detections(
    taxonomy: Taxonomy,
    timestamps_ms: Sequence[int],
    confidences: np.ndarray,
    min_confidence: float,
    content_types: tuple[str, ...] = (),
) -> SegmentDetections:
    """One segment's frames (timestamps and their (N, labels + content types) confidences, as
    the inference pool returns them) thresholded, every ancestor of a detected label added,
    each detection carrying its frame's reported content types."""
    labels = len(taxonomy)
    frames = [
        FrameScores(timestamp_ms=int(timestamp),
                    confidences=np.asarray(row[:labels], dtype=np.float32),
                    content_types=reported_content_types(content_types, row[labels:]))
        for timestamp, row in zip(timestamps_ms, confidences)
    ]
    return SegmentDetections(
        sample_timestamps_ms=tuple(frame.timestamp_ms for frame in frames),
        detections=tuple(build_detections(taxonomy, frames, min_confidence)),
    )


def assemble_detections(
    segments: Iterable[SegmentDetections], video_end_ms: int, options: ResultOptions
) -> list[Detection]:
    """Every segment's detections (any order) merged, aggregated as `options.aggregate_by`
    says (SEGMENTS stretches end at the next sample, at most at `video_end_ms`) and sorted as
    `options.sort_by` says. NAME order is a permutation of the same Detection objects as
    TIMESTAMP order."""
    detections: list[Detection] = []
    samples: list[int] = []
    for segment in segments:
        detections.extend(segment.detections)
        samples.extend(segment.sample_timestamps_ms)
    rows = sort_by_timestamp(detections)
    if options.aggregate_by == "SEGMENTS":
        rows = aggregate_segments(
            rows,
            options.sample_interval_ms,
            sample_timestamps_ms=samples or None,
            video_end_ms=video_end_ms,
        )
    return sort_detections(rows, options.sort_by)


def assemble_result(
    segments: Sequence[SegmentDetections],
    metadata: VideoMetadata,
    options: ResultOptions,
    *,
    model_version: str,
    model_info: ModelInfo,
    decode_mode: str,
    adapter: str | None = None,
) -> ModerationResult:
    """A finished video's result: `assemble_detections` plus what its answer says about the
    video, the model (and `adapter`, the ARN of the adapter it was scored with) and the
    decoding."""
    return ModerationResult(
        metadata=metadata,
        detections=tuple(assemble_detections(segments, metadata.duration_ms, options)),
        options=options,
        model_version=model_version,
        model_info=model_info,
        decode_mode=decode_mode,
        frame_count=sum(len(segment.sample_timestamps_ms) for segment in segments),
        adapter=adapter,
    )
