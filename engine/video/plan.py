"""Split a probed video into keyframe-aligned segments and place sample times on one global grid.

Segments exist so workers can decode in parallel, each starting at a keyframe. The sample grid
(0, interval, 2*interval, ...) is global and each segment owns the grid points in its
half-open [start_ms, stop_ms), so the frames sampled never depend on the segment length.
Pure functions on plain data: no I/O, no decoding.
"""

from __future__ import annotations

import bisect

from engine.video.types import Segment, VideoProbe


def plan_segments(probe: VideoProbe, segment_length_ms: int) -> list[Segment]:
    """Keyframe-aligned segments covering [0, duration) without gaps or overlaps.

    The first segment starts at 0; each next one starts at the first keyframe at or after
    previous start + `segment_length_ms`; the last one stops at the duration. With sparse
    keyframes a segment is longer than asked (it cannot start between keyframes).
    """
    if segment_length_ms <= 0:
        raise ValueError(f"segment_length_ms must be positive, got {segment_length_ms}")
    duration_ms = probe.metadata.duration_ms
    keyframes_ms = sorted(probe.keyframes_ms)
    starts_ms = [0]
    while True:
        wanted_ms = starts_ms[-1] + segment_length_ms
        position = bisect.bisect_left(keyframes_ms, wanted_ms)
        if position == len(keyframes_ms) or keyframes_ms[position] >= duration_ms:
            break
        starts_ms.append(keyframes_ms[position])
    stops_ms = starts_ms[1:] + [duration_ms]
    return [
        Segment(index=i, start_ms=a, stop_ms=b) for i, (a, b) in enumerate(zip(starts_ms, stops_ms))
    ]


def sample_times_ms(segment: Segment, interval_ms: int, duration_ms: int) -> list[int]:
    """Grid points k * interval_ms inside [segment.start_ms, segment.stop_ms) and < duration_ms."""
    if interval_ms <= 0:
        raise ValueError(f"interval_ms must be positive, got {interval_ms}")
    first_ms = -(-max(segment.start_ms, 0) // interval_ms) * interval_ms  # ceil to the grid
    stop_ms = min(segment.stop_ms, duration_ms)
    return list(range(first_ms, stop_ms, interval_ms))
