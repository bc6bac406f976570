"""The interface every classifier offers to the pipeline.

The pipeline hands a classifier one batch of uint8 RGB frames (N, H, W, 3) at the classifier's
input size and gets back confidences 0-100 for every taxonomy label, in taxonomy order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from models.taxonomy import Taxonomy


@dataclass(frozen=True)
class ModelInfo:
    """What a model says about itself; reported next to ModerationModelVersion."""

    name: str
    version: str
    input_size: tuple[int, int]  # (height, width) of the frames it expects
    sources: tuple[str, ...] = ()  # the evidence sources loaded (models/sources.py)
    content_types: tuple[str, ...] = ()  # Rekognition ContentTypes it scores ("Illustrated")


@runtime_checkable
class FrameClassifier(Protocol):
    """Maps a uint8 frame batch to per-label confidences."""

    taxonomy: Taxonomy
    info: ModelInfo

    def classify(self, frames: np.ndarray) -> np.ndarray:
        """frames: uint8 (N, H, W, 3) RGB -> float32 (N, len(taxonomy)) confidences in 0..100.

        A parent's confidence must be at least its most confident child's.
        """
        ...


@dataclass(frozen=True)
class FrameOutputs:
    """What a classifier says about a batch: label confidences (N, len(taxonomy)) and
    content-type confidences (N, len(content_types)), both 0..100."""

    labels: np.ndarray
    content_types: np.ndarray


def classify_frames(classifier: FrameClassifier, frames: np.ndarray) -> FrameOutputs:
    """Labels and content types of any FrameClassifier: one whose ModelInfo names no content
    types (like the test doubles) gets an empty (N, 0) block."""
    if classifier.info.content_types:
        return classifier.classify_frames(frames)
    labels = classifier.classify(frames)
    return FrameOutputs(labels, np.zeros((len(labels), 0), dtype=np.float32))


class NoModelInstalledError(RuntimeError):
    """Raised when no real classifier is available: the engine refuses to invent results."""


def check_confidences(taxonomy: Taxonomy, scores: np.ndarray, batch_size: int) -> np.ndarray:
    """Validate a classifier's output shape and range so a bad model fails loudly, not subtly."""
    scores = np.asarray(scores, dtype=np.float32)
    expected = (batch_size, len(taxonomy))
    if scores.shape != expected:
        raise ValueError(f"classifier returned shape {scores.shape}, expected {expected}")
    if not np.all(np.isfinite(scores)) or scores.min(initial=0) < 0 or scores.max(initial=0) > 100:
        raise ValueError("classifier returned confidences outside 0..100")
    return scores
