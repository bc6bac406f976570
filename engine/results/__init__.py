"""Detections: threshold, hierarchy expansion, ordering and SEGMENTS aggregation.

A leaf: it knows the taxonomy and plain numbers, nothing about Ray, video decoding or HTTP.
"""

from engine.results.aggregate import aggregate_segments
from engine.results.detections import (
    build_detections,
    detected_label_indices,
    hierarchical_confidence,
    sort_by_name,
    sort_by_timestamp,
    sort_detections,
)
from engine.results.types import Detection, FrameScores

__all__ = [
    "Detection",
    "FrameScores",
    "aggregate_segments",
    "build_detections",
    "detected_label_indices",
    "hierarchical_confidence",
    "sort_by_name",
    "sort_by_timestamp",
    "sort_detections",
]
