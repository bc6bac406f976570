"""Thumbnails of flagged moments: which moments, their frames, blurred, as JPEG data: URIs.

A moment is a timestamp with stored detections. The report shows at most `max_count`: first
the peak of every SEGMENTS row (so each stretch of flagged time gets a picture), most
confident first, then other flagged timestamps by confidence. Frames come from the job's video
through the engine's own decoder (engine.video, accurate mode) at the detection timestamps,
which are the sampled frames' own presentation times, so the picture is the frame the model
saw. Pictures are blurred (Gaussian, radius a tenth of the width: shapes and colours only)
unless the caller explicitly asks otherwise; the blur happens before encoding, so unblurred
pixels never leave this module unless asked for.
"""

from __future__ import annotations

import base64
import bisect
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from engine.results.types import Detection
from engine.video import Segment, SegmentDecodeRequest, decode_sampled_frames, probe_video

THUMBNAIL_WIDTH = 240
BLUR_RADIUS_FRACTION = 0.1
"""Gaussian blur radius as a fraction of the thumbnail width (24 px at 240 px)."""
JPEG_QUALITY = 80


@dataclass(frozen=True)
class FlaggedMoment:
    """A timestamp with stored detections; `labels` are the most specific ones shown there."""

    timestamp_ms: int
    peak_confidence: float
    labels: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Thumbnail:
    moment: FlaggedMoment
    data_uri: str
    blurred: bool


def flagged_moments(detections: Sequence[Detection]) -> list[FlaggedMoment]:
    """Every distinct detection timestamp, in time order, with its most specific labels."""
    by_time: dict[int, list[Detection]] = defaultdict(list)
    for detection in detections:
        by_time[detection.timestamp_ms].append(detection)
    moments = []
    for timestamp_ms in sorted(by_time):
        rows = by_time[timestamp_ms]
        # (name, level) of every label that has a child here; names repeat across levels
        # ("Gambling" under "Gambling"), so the level is part of the key.
        parents = {(row.parent_name, row.level - 1) for row in rows}
        leaves = sorted(
            ((row.name, row.confidence) for row in rows if (row.name, row.level) not in parents),
            key=lambda item: (-item[1], item[0]),
        )
        moments.append(
            FlaggedMoment(timestamp_ms, max(row.confidence for row in rows), tuple(leaves))
        )
    return moments


def choose_moments(
    detections: Sequence[Detection], segments: Sequence[Detection], max_count: int
) -> tuple[list[FlaggedMoment], int]:
    """(at most `max_count` moments in time order, how many flagged moments there are)."""
    moments = {moment.timestamp_ms: moment for moment in flagged_moments(detections)}
    by_label: dict[int, list[Detection]] = defaultdict(list)
    for detection in sorted(detections, key=lambda d: d.timestamp_ms):
        by_label[detection.label_index].append(detection)
    times = {label: [d.timestamp_ms for d in rows] for label, rows in by_label.items()}
    ranked: dict[int, None] = {}  # insertion-ordered set
    for row in sorted(segments, key=lambda s: (-s.confidence, s.timestamp_ms)):
        peak = _segment_peak_ms(by_label.get(row.label_index, []), times.get(row.label_index, []), row)
        if peak is not None:
            ranked.setdefault(peak)
    for moment in sorted(moments.values(), key=lambda m: (-m.peak_confidence, m.timestamp_ms)):
        ranked.setdefault(moment.timestamp_ms)
    chosen = sorted(t for t in list(ranked)[:max_count] if t in moments)
    return [moments[t] for t in chosen], len(moments)


def _segment_peak_ms(
    label_rows: Sequence[Detection], times: Sequence[int], row: Detection
) -> int | None:
    """Earliest timestamp with the stretch's highest confidence, among the rows (one label,
    time order; `times` their timestamps) inside the SEGMENTS row's [start, end)."""
    start = row.start_ms if row.start_ms is not None else row.timestamp_ms
    end = max(row.end_ms if row.end_ms is not None else start, start + 1)
    inside = label_rows[bisect.bisect_left(times, start) : bisect.bisect_left(times, end)]
    if not inside:
        return None
    return min(inside, key=lambda d: (-d.confidence, d.timestamp_ms)).timestamp_ms


def decode_frames(
    source: str, timestamps_ms: Sequence[int], width: int, hwaccel: str, threads: int
) -> dict[int, np.ndarray]:
    """The frame on screen at each timestamp, RGB uint8 scaled to `width` (aspect kept).

    Each timestamp is decoded as a one-sample segment [t, t + 1) with the grid step t, so the
    decoder's single target is exactly t; it seeks to the keyframe before t and decodes
    forward, as a job's segment does. Raises VideoError when the video cannot be read.
    """
    probe = probe_video(source)
    meta = probe.metadata
    height = max(2, round(width * meta.frame_height / max(meta.frame_width, 1) / 2) * 2)
    frames: dict[int, np.ndarray] = {}
    for timestamp_ms in timestamps_ms:
        segment = Segment(index=0, start_ms=timestamp_ms, stop_ms=timestamp_ms + 1)
        batch = decode_sampled_frames(
            SegmentDecodeRequest(
                source, probe, segment, max(timestamp_ms, 1), (height, width),
                mode="accurate", threads=threads, hwaccel=hwaccel,
            )
        )
        if len(batch):
            frames[timestamp_ms] = batch.frames[-1]
    return frames


def encode_thumbnail(frame: np.ndarray, blurred: bool) -> str:
    """A JPEG data: URI of the frame, Gaussian-blurred unless `blurred` is False."""
    image = Image.fromarray(frame)
    if blurred:
        radius = max(4.0, image.width * BLUR_RADIUS_FRACTION)
        image = image.filter(ImageFilter.GaussianBlur(radius))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def make_thumbnails(
    source: str,
    moments: Sequence[FlaggedMoment],
    blurred: bool,
    hwaccel: str = "auto",
    threads: int = 1,
    width: int = THUMBNAIL_WIDTH,
) -> list[Thumbnail]:
    """Decode, blur (unless told not to) and encode the moments' frames."""
    frames = decode_frames(source, [m.timestamp_ms for m in moments], width, hwaccel, threads)
    return [
        Thumbnail(moment, encode_thumbnail(frames[moment.timestamp_ms], blurred), blurred)
        for moment in moments
        if moment.timestamp_ms in frames
    ]
