"""Detections: threshold, hierarchy expansion, ordering, SEGMENTS aggregation, and the one
assembler every result comes from (engine/results/assemble.py).

A leaf: it knows the taxonomy, VideoMetadata and plain numbers, nothing about Ray, video
decoding, job storage or the wire (engine/api/wire.py writes its dataclasses).
"""

from engine.results.aggregate import aggregate_segments
from engine.results.assemble import assemble_detections, assemble_result, segment_detections
from engine.results.detections import (
    build_detections,
    detected_label_indices,
    hierarchical_confidence,
    reported_content_types,
    sort_by_confidence,
    sort_by_name,
    sort_by_timestamp,
    sort_detections,
)
from engine.results.types import (
    AGGREGATIONS,
    SORT_ORDERS,
    ContentType,
    Detection,
    FrameScores,
    ModerationResult,
    ResultOptions,
    SegmentDetections,
)

__all__ = [
    "AGGREGATIONS",
    "SORT_ORDERS",
    "ContentType",
    "Detection",
    "FrameScores",
    "ModerationResult",
    "ResultOptions",
    "SegmentDetections",
    "aggregate_segments",
    "assemble_detections",
    "assemble_result",
    "build_detections",
    "detected_label_indices",
    "hierarchical_confidence",
    "reported_content_types",
    "segment_detections",
    "sort_by_confidence",
    "sort_by_name",
    "sort_by_timestamp",
    "sort_detections",
]
