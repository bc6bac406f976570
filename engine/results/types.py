"""Data that flows into and out of the results module.

`FrameScores` come from the classifier (one per sampled frame); `Detection` is one
ContentModerationDetection; `SegmentDetections` is what one finished segment contributes to a
result (its thresholded detections and every timestamp it sampled); `ModerationResult` is one
finished video's result before it is written on the wire (engine/api/wire.py writes all of
them, nothing here knows the wire's PascalCase names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from engine.video.types import VideoMetadata
from models.base import ModelInfo

SORT_ORDERS = ("TIMESTAMP", "NAME")
"""GetContentModeration's SortBy values; the first is the default."""
AGGREGATIONS = ("TIMESTAMPS", "SEGMENTS")
"""GetContentModeration's AggregateBy values; the first is the default."""


CONTENT_TYPE_MIN_CONFIDENCE = 50.0
"""A frame's content type (Illustrated...) is reported on its detections from this confidence
up, whatever the request's MinConfidence (which applies to labels, as Rekognition documents)."""


ContentTypeName = Literal["Animated", "Illustrated"]
"""The ContentType names Rekognition reports for moderation (evidence_v7.json maps them)."""


@dataclass(frozen=True)
class ContentType:
    """One Rekognition ContentType of a frame: its Name and Confidence."""

    name: ContentTypeName
    confidence: float
    """0..100, like a label's."""


@dataclass(frozen=True)
class FrameScores:
    """Confidences (0..100, taxonomy order) of every label for the frame shown at `timestamp_ms`,
    and the content types reported for it."""

    timestamp_ms: int
    confidences: np.ndarray
    content_types: tuple[ContentType, ...] = ()


@dataclass(frozen=True)
class Detection:
    """One ContentModerationDetection."""

    timestamp_ms: int
    name: str
    parent_name: str
    """"" for a top-level category."""
    level: int
    """TaxonomyLevel: 1 (top-level category) to 3."""
    confidence: float
    label_index: int
    """Position of the label in the model's taxonomy, the column of FrameScores.confidences."""
    start_ms: int | None = None
    end_ms: int | None = None
    """StartTimestampMillis and EndTimestampMillis: set only in SEGMENTS aggregation."""
    content_types: tuple[ContentType, ...] = ()
    """The content types of the detection's frame (of any frame of its stretch, at the highest
    confidence, in SEGMENTS aggregation)."""


@dataclass(frozen=True)
class SegmentDetections:
    """One segment's contribution to a result: TIMESTAMPS-mode detections at or above
    MinConfidence (ancestors included) and the timestamp of every frame it sampled."""

    sample_timestamps_ms: tuple[int, ...]
    detections: tuple[Detection, ...]


@dataclass(frozen=True)
class ResultOptions:
    """How a result is cut: the request's threshold, order and aggregation, and the sampling
    interval the video was sampled at (SEGMENTS stretches end one interval after a sample)."""

    min_confidence: float
    sort_by: str = "TIMESTAMP"
    aggregate_by: str = "TIMESTAMPS"
    sample_interval_ms: int = 1000

    def __post_init__(self) -> None:
        if self.sort_by not in SORT_ORDERS:
            raise ValueError(f"sort_by must be one of {', '.join(SORT_ORDERS)}; got {self.sort_by!r}")
        if self.aggregate_by not in AGGREGATIONS:
            raise ValueError(
                f"aggregate_by must be one of {', '.join(AGGREGATIONS)}; got {self.aggregate_by!r}"
            )


@dataclass(frozen=True)
class ModerationResult:
    """One finished video as a single, unpaged GetContentModeration answer (the CLI, the
    notebook client and batch write it; the server pages through stored rows instead)."""

    metadata: VideoMetadata
    detections: tuple[Detection, ...]
    """In the order `options.sort_by` asks for, aggregated as `options.aggregate_by` asks."""
    options: ResultOptions
    model_version: str
    """ModerationModelVersion."""
    model_info: ModelInfo
    decode_mode: str
    """How the frames were picked ("accurate" or "keyframes")."""
    frame_count: int
    """Frames classified."""
    adapter: str | None = None
    """The Custom Moderation adapter (project version ARN) the frames were scored with."""
