"""The Ray Data stages of a batch: video -> segments -> sampled frames -> confidences.

Every stage turns a failure into a row (`kind` "error" with a readable `error`) instead of
raising, so one broken video never stops the dataset; the driver (collect.py) regroups rows
per video. Decoding and classifying are the engine's own (engine.video, the classifier that
engine.cluster loads), with the same SegmentDecodeRequest the segment task builds from the
settings, so a batch yields the detections the server and `modengine moderate` yield.

Rows carry: video, segment_index, segment_count, rows_in_segment (each segment emits at
least one row), kind ("frame" | "empty" | "error"), error, metadata (VideoMetadata as JSON),
timestamp_ms, and frame (uint8 HxWx3, zeros when kind is not "frame") until the model stage
replaces it with confidences.
"""

from __future__ import annotations

import dataclasses
import json
import pickle

import numpy as np

from engine.batch.locations import open_location
from engine.cluster import (
    FrameScorer,
    failure_message,
    load_classifier,
    load_pool_classifier,
    segment_decode_request,
)
from engine.config import EngineSettings
from engine.video import check_duration, decode_sampled_frames, plan_segments, probe_video
from engine.video.types import VideoMetadata


def plan_video(row: dict, settings: EngineSettings) -> list[dict]:
    """Probe one video and plan its keyframe-aligned segments: one row per segment.

    The decoder's source (a presigned URL for S3) is made here, just before the video is
    read, rather than when the batch starts: a long batch would outlive the URL's lifetime.
    """
    try:
        source = open_location(row["location"], settings).source_for(row["video"])
        probe = probe_video(source)
        check_duration(probe.metadata, settings.max_duration_s)
        segments = plan_segments(probe, round(settings.segment_length_s * 1000))
    except Exception as error:  # noqa: BLE001 - any failure belongs to this video only
        return [_error_row(row["video"], failure_message(error))]
    metadata = json.dumps(dataclasses.asdict(probe.metadata))
    return [
        {
            "video": row["video"],
            "source": source,
            "segment_index": segment.index,
            "segment_count": len(segments),
            "task": pickle.dumps((probe, segment)),
            "metadata": metadata,
            "kind": "segment",
            "error": "",
        }
        for segment in segments
    ]


def decode_rows(
    row: dict, settings: EngineSettings, input_size: tuple[int, int]
) -> list[dict]:
    """Decode one segment's sample frames (deduplicated like the segment task does)."""
    blank = np.zeros((*input_size, 3), dtype=np.uint8)
    common = {key: row[key] for key in ("video", "segment_index", "segment_count", "metadata")}
    if row["kind"] == "error":
        return [common | _frame_fields("error", row["error"], 0, blank, 1)]
    probe, segment = pickle.loads(row["task"])
    try:
        batch = decode_sampled_frames(
            segment_decode_request(settings, row["source"], probe, segment, input_size)
        )
    except Exception as error:  # noqa: BLE001 - this segment fails its video, nothing else
        return [common | _frame_fields("error", failure_message(error), 0, blank, 1)]
    if not len(batch):
        return [common | _frame_fields("empty", "", 0, blank, 1)]
    return [
        common | _frame_fields("frame", "", int(timestamp), frame, len(batch))
        for timestamp, frame in zip(batch.timestamps_ms, batch.frames)
    ]


class BatchClassifier:
    """The model stage's callable class: Ray Data keeps a pool of these actors, each loading
    the classifier once (as engine.cluster.inference.InferenceActor does) and classifying one
    batch of frame rows per call, through the same FrameScorer, so with `adapter_path` (a
    Custom Moderation adapter file) the columns are the adapted taxonomy's, as on the pool."""

    def __init__(self, settings: EngineSettings, adapter_path: str | None = None) -> None:
        self._scorer = FrameScorer(load_pool_classifier(settings))
        self._adapter_path = adapter_path
        self._width = len(self._scorer.taxonomy_for(adapter_path)) + len(
            self._scorer.classifier.info.content_types)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        frames = batch.pop("frame")
        wanted = batch["kind"] == "frame"
        confidences = np.zeros((len(frames), self._width), dtype=np.float32)
        if wanted.any():
            rows = self._scorer.rows(np.ascontiguousarray(frames[wanted]))
            confidences[wanted] = self._scorer.scores(rows, self._adapter_path)
        batch["confidences"] = confidences
        return batch


def describe_model(settings: EngineSettings, adapter_path: str | None = None):
    """(taxonomy, ModelInfo) of the configured classifier, built in a worker (the driver
    needs them to size frames and to build detections; weights stay off the driver). With an
    adapter, the taxonomy is the adapted one (the model stage's score columns)."""
    classifier = load_classifier(settings)
    return FrameScorer(classifier).taxonomy_for(adapter_path), classifier.info


def metadata_from_json(text: str) -> VideoMetadata:
    return VideoMetadata(**json.loads(text))


def _error_row(video: str, message: str) -> dict:
    return {"video": video, "source": "", "segment_index": 0, "segment_count": 1,
            "task": b"", "metadata": "", "kind": "error", "error": message}


def _frame_fields(kind: str, error: str, timestamp_ms: int, frame: np.ndarray, rows: int) -> dict:
    return {"kind": kind, "error": error, "timestamp_ms": timestamp_ms, "frame": frame,
            "rows_in_segment": rows}
