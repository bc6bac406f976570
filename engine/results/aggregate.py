"""SEGMENTS aggregation: stretches of time in which a label was detected continuously.

A stretch is a run of consecutive samples (no sample of the video between them lacks the
label). Its StartTimestampMillis is the first detection's timestamp, its EndTimestampMillis the
time the last detecting sample stops being current (the next sample's timestamp, or the last
detection plus one sample interval at the end of the video), its Confidence the highest in the
run, and its Timestamp the start.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from engine.results.detections import sort_by_timestamp, strongest_content_types
from engine.results.types import Detection


def aggregate_segments(
    detections: Iterable[Detection],
    sample_interval_ms: int,
    sample_timestamps_ms: Sequence[int] | None = None,
    video_end_ms: int | None = None,
) -> list[Detection]:
    """Merge TIMESTAMPS-mode detections into SEGMENTS-mode detections.

    `sample_timestamps_ms` lists every sampled frame's timestamp (detected or not); when given,
    two detections are consecutive only if no sample lies between them, and a stretch ends at
    the next sample. Without it, samples are assumed every `sample_interval_ms` and a gap longer
    than 1.5 intervals breaks a stretch. `video_end_ms` caps the end of the last stretch.
    """
    timeline = sorted(set(sample_timestamps_ms)) if sample_timestamps_ms else None
    position = {t: i for i, t in enumerate(timeline)} if timeline else None
    by_label: dict[int, list[Detection]] = defaultdict(list)
    for detection in detections:
        by_label[detection.label_index].append(detection)

    merged: list[Detection] = []
    for runs in by_label.values():
        runs.sort(key=lambda d: d.timestamp_ms)
        current: list[Detection] = []
        for detection in runs:
            if current and not _consecutive(current[-1], detection, sample_interval_ms, position):
                merged.append(_stretch(current, sample_interval_ms, timeline, position, video_end_ms))
                current = []
            current.append(detection)
        if current:
            merged.append(_stretch(current, sample_interval_ms, timeline, position, video_end_ms))
    return sort_by_timestamp(merged)


def _consecutive(previous: Detection, detection: Detection, interval_ms: int, position) -> bool:
    if position is not None and previous.timestamp_ms in position and detection.timestamp_ms in position:
        return position[detection.timestamp_ms] - position[previous.timestamp_ms] <= 1
    return detection.timestamp_ms - previous.timestamp_ms <= interval_ms * 1.5


def _stretch(run: list[Detection], interval_ms: int, timeline, position, video_end_ms) -> Detection:
    first, last = run[0], run[-1]
    end_ms = last.timestamp_ms + interval_ms
    if timeline is not None and last.timestamp_ms in position:
        following = position[last.timestamp_ms] + 1
        if following < len(timeline):
            end_ms = timeline[following]
    if video_end_ms is not None:
        end_ms = max(min(end_ms, video_end_ms), last.timestamp_ms)
    return Detection(
        timestamp_ms=first.timestamp_ms,
        name=first.name,
        parent_name=first.parent_name,
        level=first.level,
        confidence=max(d.confidence for d in run),
        label_index=first.label_index,
        start_ms=first.timestamp_ms,
        end_ms=end_ms,
        content_types=strongest_content_types(run),
    )
