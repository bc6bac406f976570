"""Plain data crossing the cluster's boundary, kept free of Ray imports so the jobs layer, the
local runner and test doubles can use it without loading Ray.

A segment task gets one `SegmentTask` (what to decode, and the inference actors to classify
through) and returns one `SegmentOutcome`: the segment's sampled timestamps and their raw
per-label confidences, plus where and how fast it ran. Turning confidences into detections and
results is not the cluster's business (engine/results does it for every caller).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.config import EngineSettings
from engine.video.types import Segment, SegmentDecodeRequest, VideoProbe


@dataclass(frozen=True)
class SegmentTask:
    """One segment task's request: decode `decode`, classify through `actor` (or, should it
    die, through the `spare_actors` of the same pool)."""

    decode: SegmentDecodeRequest
    actor: object
    spare_actors: Sequence = ()
    adapter_path: str | None = None
    """An adapter file (the job's Custom Moderation adapter) to merge into the scores."""
    chunk_frames: int = 8
    """Frames sent to the actor at once while decoding goes on (settings.segment_chunk_frames)."""


@dataclass(frozen=True)
class SegmentOutcome:
    """What one segment task returns: its frames' scores and where/how fast it ran."""

    segment_index: int
    timestamps_ms: tuple[int, ...]
    """Each classified frame's presentation time, ascending, each frame once."""
    confidences: np.ndarray = field(repr=False)
    """(frames, labels + content types) float32 confidences 0..100, row i for timestamps_ms[i]:
    the labels in taxonomy order, then the model's `ModelInfo.content_types`."""
    node_id: str = ""
    decode_s: float = 0.0
    """Wall time of the decode (its chunks were being classified meanwhile)."""
    classify_s: float = 0.0
    """Wall time spent waiting for the scores once the segment was decoded."""
    worker_pid: int = 0
    worker_peak_rss_mb: float = 0.0


def segment_decode_request(
    settings: EngineSettings,
    source: str,
    probe: VideoProbe,
    segment: Segment,
    output_size: tuple[int, int],
    decode_mode: str | None = None,
) -> SegmentDecodeRequest:
    """How a segment is decoded for the model under `settings` (sampling interval, decode
    threads, hardware decoding and where frames are scaled), the same for the cluster's tasks and for batch."""
    return SegmentDecodeRequest(
        source=source,
        probe=probe,
        segment=segment,
        sample_interval_ms=settings.sample_interval_ms,
        output_size=tuple(output_size),
        mode=decode_mode or settings.decode_mode,
        threads=settings.effective_decode_threads,
        hwaccel=settings.hwaccel,
        preprocess=settings.preprocess,
    )


@dataclass(frozen=True)
class AdapterExample:
    """One annotated image of an adapter's dataset: its encoded bytes (JPEG or PNG), the
    adapted labels it shows (none: a negative for every label) and which split it is in."""

    source: str
    """Where it came from (s3://bucket/key), for messages."""
    image: bytes = field(repr=False)
    labels: tuple[str, ...]
    testing: bool


@dataclass(frozen=True)
class AdapterTrainingRequest:
    """Train one adapter: a head per label of `labels` ((Name, ParentName) in the model's full
    taxonomy), calibrated so `confidence_threshold` is the decision on the testing split."""

    labels: tuple[tuple[str, str], ...]
    examples: tuple[AdapterExample, ...]
    confidence_threshold: float


@dataclass(frozen=True)
class AdapterLabelResult:
    name: str
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int
    f1: float


@dataclass(frozen=True)
class AdapterTrainingResult:
    """A trained adapter (the file's bytes) and its evaluation on the testing split."""

    adapter_file: bytes = field(repr=False)
    f1: float
    labels: tuple[AdapterLabelResult, ...]
    training_images: int
    training_embeddings: int
    testing_confidences: tuple[tuple[str, tuple[float, ...]], ...]
    """(source, confidence per label) of every testing image."""
