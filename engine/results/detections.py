"""From per-frame label confidences to Rekognition's ContentModerationDetections.

A label is reported at a timestamp when its confidence reaches MinConfidence; every ancestor of
a reported label is reported too, each as its own entry with its own TaxonomyLevel (the
classifier guarantees a parent's confidence is at least its child's, and we enforce it here so
a child is never emitted without its parents).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from engine.results.types import CONTENT_TYPE_MIN_CONFIDENCE, ContentType, Detection, FrameScores
from models.taxonomy import Taxonomy


def detected_label_indices(taxonomy: Taxonomy, confidences: np.ndarray, min_confidence: float) -> list[int]:
    """Indices of labels at or above the threshold, closed under "ancestor of"."""
    chosen: set[int] = set()
    for index in np.flatnonzero(np.asarray(confidences) >= min_confidence):
        chosen.add(int(index))
        chosen.update(ancestor.index for ancestor in taxonomy.ancestors(int(index)))
    return sorted(chosen)


def hierarchical_confidence(taxonomy: Taxonomy, confidences: np.ndarray) -> np.ndarray:
    """Raise each parent to at least its most confident descendant (a no-op for a sound model)."""
    lifted = np.array(confidences, dtype=np.float32, copy=True)
    for label in reversed(taxonomy.labels):  # children come after parents: walk leaves first
        if label.parent is not None:
            lifted[label.parent] = max(lifted[label.parent], lifted[label.index])
    return lifted


def build_detections(
    taxonomy: Taxonomy, frame_scores: Iterable[FrameScores], min_confidence: float
) -> list[Detection]:
    """TIMESTAMPS-mode detections, one per (frame, label), sorted by (timestamp, name, level)."""
    detections: list[Detection] = []
    for frame in frame_scores:
        confidences = hierarchical_confidence(taxonomy, frame.confidences)
        for index in detected_label_indices(taxonomy, confidences, min_confidence):
            label = taxonomy.labels[index]
            detections.append(
                Detection(
                    timestamp_ms=frame.timestamp_ms,
                    name=label.name,
                    parent_name=taxonomy.parent_name(label),
                    level=label.level,
                    confidence=float(confidences[index]),
                    label_index=index,
                    content_types=frame.content_types,
                )
            )
    return sort_by_timestamp(detections)


def sort_by_timestamp(detections: Iterable[Detection]) -> list[Detection]:
    """Rekognition's default order: Timestamp ascending, then label name, then level."""
    return sorted(detections, key=lambda d: (d.timestamp_ms, d.name, d.level, d.label_index))


def sort_by_name(detections: Iterable[Detection]) -> list[Detection]:
    """NAME order: each label's detections grouped together (labels alphabetically), and within
    a label by confidence, highest first; ties keep time order so the result is deterministic."""
    return sorted(
        detections,
        key=lambda d: (d.name, d.level, d.label_index, -d.confidence, d.timestamp_ms),
    )


def sort_detections(detections: Iterable[Detection], sort_by: str = "TIMESTAMP") -> list[Detection]:
    if sort_by == "TIMESTAMP":
        return sort_by_timestamp(detections)
    if sort_by == "NAME":
        return sort_by_name(detections)
    raise ValueError(f"sort_by must be TIMESTAMP or NAME, got {sort_by!r}")


def sort_by_confidence(detections: Iterable[Detection]) -> list[Detection]:
    """Rekognition's image order (DetectModerationLabels): confidence descending; on a tie the
    parent (which always scores at least its child) comes first, then by name, so the order is
    deterministic."""
    return sorted(detections, key=lambda d: (-d.confidence, d.level, d.name, d.label_index))


def reported_content_types(names: tuple[str, ...], confidences: np.ndarray) -> tuple[ContentType, ...]:
    """A frame's content types at or above CONTENT_TYPE_MIN_CONFIDENCE, most confident first."""
    found = [ContentType(name, float(confidence)) for name, confidence in zip(names, confidences)
             if confidence >= CONTENT_TYPE_MIN_CONFIDENCE]
    return tuple(sorted(found, key=lambda content_type: -content_type.confidence))


def strongest_content_types(detections: Iterable[Detection]) -> tuple[ContentType, ...]:
    """Each content type seen on any of `detections`, at its highest confidence."""
    best: dict[str, float] = {}
    for detection in detections:
        for content_type in detection.content_types:
            best[content_type.name] = max(best.get(content_type.name, 0.0), content_type.confidence)
    return tuple(ContentType(name, confidence)
                 for name, confidence in sorted(best.items(), key=lambda item: -item[1]))
