"""Data that flows into and out of the results module.

`FrameScores` come from the classifier (one per sampled frame); `Detection` is one
ContentModerationDetection as the wire shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FrameScores:
    """Confidences (0..100, taxonomy order) of every label for the frame shown at `timestamp_ms`."""

    timestamp_ms: int
    confidences: np.ndarray


@dataclass(frozen=True)
class Detection:
    """One ContentModerationDetection. Segment fields are set only in SEGMENTS aggregation."""

    timestamp_ms: int
    name: str
    parent_name: str
    level: int
    confidence: float
    label_index: int
    start_ms: int | None = None
    end_ms: int | None = None

    def to_wire(self) -> dict:
        item: dict = {
            "Timestamp": self.timestamp_ms,
            "ModerationLabel": {
                "Confidence": round(float(self.confidence), 4),
                "Name": self.name,
                "ParentName": self.parent_name,
                "TaxonomyLevel": self.level,
            },
        }
        if self.start_ms is not None and self.end_ms is not None:
            item["StartTimestampMillis"] = self.start_ms
            item["EndTimestampMillis"] = self.end_ms
            item["DurationMillis"] = self.end_ms - self.start_ms
        return item
