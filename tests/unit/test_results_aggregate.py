"""SEGMENTS aggregation against hand-computed stretches, including labels that stop and restart."""

import numpy as np

from engine.api.wire import detection_to_wire
from engine.results import FrameScores, aggregate_segments, build_detections
from models.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()
WEAPONS = TAXONOMY.find("Weapons").index
PILLS = TAXONOMY.find("Pills").index


def frame(t_ms, **labels):
    row = np.zeros(len(TAXONOMY), dtype=np.float32)
    for index, value in labels.items():
        row[{"weapons": WEAPONS, "pills": PILLS}[index]] = value
    return FrameScores(t_ms, row)


def stretches(detections, name):
    return [
        (d.start_ms, d.end_ms, detection_to_wire(d)["DurationMillis"], d.confidence, d.timestamp_ms)
        for d in detections
        if d.name == name
    ]


def test_label_that_stops_and_restarts_gives_two_stretches():
    frames = [
        frame(0, weapons=60),
        frame(1000, weapons=80),
        frame(2000, weapons=70),
        frame(3000),
        frame(4000, weapons=90),
        frame(5000),
    ]
    timeline = [f.timestamp_ms for f in frames]
    detections = build_detections(TAXONOMY, frames, 50)
    merged = aggregate_segments(detections, 1000, sample_timestamps_ms=timeline, video_end_ms=5500)
    assert stretches(merged, "Weapons") == [(0, 3000, 3000, 80.0, 0), (4000, 5000, 1000, 90.0, 4000)]
    assert stretches(merged, "Violence") == [(0, 3000, 3000, 80.0, 0), (4000, 5000, 1000, 90.0, 4000)]


def test_stretch_at_the_end_is_capped_by_the_video_end():
    frames = [frame(0), frame(1000, pills=70), frame(2000, pills=75)]
    merged = aggregate_segments(
        build_detections(TAXONOMY, frames, 50), 1000, sample_timestamps_ms=[0, 1000, 2000], video_end_ms=2400
    )
    assert stretches(merged, "Pills") == [(1000, 2400, 1400, 75.0, 1000)]


def test_overlapping_labels_are_independent_and_sorted_by_start():
    frames = [frame(0, weapons=60), frame(1000, weapons=60, pills=99), frame(2000, pills=99)]
    merged = aggregate_segments(build_detections(TAXONOMY, frames, 50), 1000, [0, 1000, 2000], 3000)
    starts = [(d.start_ms, d.name) for d in merged]
    assert starts == sorted(starts)
    assert stretches(merged, "Weapons") == [(0, 2000, 2000, 60.0, 0)]
    assert stretches(merged, "Pills") == [(1000, 3000, 2000, 99.0, 1000)]


def test_without_a_timeline_a_gap_over_one_and_a_half_intervals_splits():
    frames = [frame(0, weapons=60), frame(1000, weapons=60), frame(3000, weapons=60)]
    merged = aggregate_segments(build_detections(TAXONOMY, frames, 50), 1000)
    assert stretches(merged, "Weapons") == [(0, 2000, 2000, 60.0, 0), (3000, 4000, 1000, 60.0, 3000)]


def test_irregular_sample_times_use_the_next_sample_as_end():
    frames = [frame(0, weapons=60), frame(967, weapons=61), frame(2002)]
    merged = aggregate_segments(build_detections(TAXONOMY, frames, 50), 1000, [0, 967, 2002], 3000)
    assert stretches(merged, "Weapons") == [(0, 2002, 2002, 61.0, 0)]
