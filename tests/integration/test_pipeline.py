"""The Ray pipeline end to end with the colour test double: exact labels at exact times, for
several containers, codecs and frame rates, whatever the segment length or actor count."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest

from engine.api.wire import detection_to_wire
from engine.config import EngineSettings
from engine.local_runner import LocalRunner, result_options
from tests.doubles.colour_classifier import expected_labels
from tests.media import make_colour_video

pytestmark = [pytest.mark.integration, pytest.mark.ray]

# Stretches chosen so changes fall between sample times and across several 1 s GOPs.
SEQUENCE = [
    ("red", 2.4), ("white", 1.3), ("green", 3.1), ("blue", 2.2), ("black", 0.9),
    ("yellow", 1.6), ("magenta", 2.5), ("red", 1.7),
]
INTERVAL_MS = 1000


def settings_for(model: str, segment_length_s: float = 3.0, actors: int = 1) -> EngineSettings:
    return EngineSettings(
        model=model,
        segment_length_s=segment_length_s,
        inference_actors=actors,
        inference_actor_cpus=0,
        max_batch_wait_ms=2,
        sample_interval_ms=INTERVAL_MS,
    )


def expected_detections(truth, min_confidence: float = 50.0) -> list[tuple]:
    """(timestamp, name, level, confidence) the engine must report, from the generator's truth."""
    rows = []
    for sample_ms in range(0, truth.duration_ms, INTERVAL_MS):
        frame_ms = truth.frame_time_at(sample_ms)
        for name, level, confidence in expected_labels(truth.colour_at(sample_ms)):
            if confidence >= min_confidence:
                rows.append((frame_ms, name, level, confidence))
    return sorted(set(rows), key=lambda row: (row[0], row[1], row[2]))


def observed(result) -> list[tuple]:
    return [(d.timestamp_ms, d.name, d.level, d.confidence) for d in result.detections]


def max_frame_interval_ms(truth) -> int:
    times = truth.frame_times_ms
    return max(b - a for a, b in itertools.pairwise(times))


@pytest.fixture(scope="module")
def runner(ray_session, test_double_model):
    engine = LocalRunner(settings_for(test_double_model))
    yield engine
    engine.shutdown()


VARIANTS = {
    "mp4-h264": {"suffix": ".mp4", "codec": "h264"},
    "mov-h264": {"suffix": ".mov", "codec": "h264"},
    "mp4-hevc": {"suffix": ".mp4", "codec": "hevc"},
    "mov-hevc": {"suffix": ".mov", "codec": "hevc"},
    "mp4-h264-29.97fps": {"suffix": ".mp4", "codec": "h264", "fps": Fraction(30000, 1001)},
    "mp4-h264-vfr": {"suffix": ".mp4", "codec": "h264", "vfr": True},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_detections_match_the_truth(variant, runner, tmp_path):
    options = dict(VARIANTS[variant])
    path = tmp_path / f"colours{options.pop('suffix')}"
    truth = make_colour_video(path, SEQUENCE, size=(96, 64), gop_s=1.0, **options)

    result = runner.moderate(str(path))

    assert observed(result) == expected_detections(truth)
    interval = max_frame_interval_ms(truth)
    for detection in result.detections:
        sample_ms = detection.timestamp_ms + (-detection.timestamp_ms % INTERVAL_MS)
        assert 0 <= sample_ms - detection.timestamp_ms < interval, "timestamp is not the frame on screen"
    metadata = result.metadata
    assert metadata.codec == options.get("codec", "h264")
    assert (metadata.frame_width, metadata.frame_height) == (96, 64)
    assert abs(metadata.duration_ms - truth.duration_ms) <= interval
    assert result.frame_count == len({truth.frame_time_at(t) for t in range(0, truth.duration_ms, INTERVAL_MS)})


@pytest.mark.parametrize("rotation", [90, 270])
def test_rotated_phone_video_is_upright_and_reports_displayed_size(rotation, runner, tmp_path):
    # Top half and bottom half differ, so a sideways or flipped decode changes the label.
    sequence = [(("red", "green"), 2.2), (("blue", "white"), 2.1), (("white", "red"), 1.9)]
    truth = make_colour_video(tmp_path / "phone.mp4", sequence, size=(96, 160), rotation=rotation)

    result = runner.moderate(str(tmp_path / "phone.mp4"))

    assert (result.metadata.frame_width, result.metadata.frame_height) == truth.displayed_size == (160, 96)
    assert observed(result) == expected_detections(truth)


def test_min_confidence_filters_through_the_pipeline(runner, tmp_path):
    truth = make_colour_video(tmp_path / "c.mp4", SEQUENCE, size=(96, 64))
    result = runner.moderate(str(tmp_path / "c.mp4"), min_confidence=70)
    assert observed(result) == expected_detections(truth, min_confidence=70)
    assert {d.name for d in result.detections}.isdisjoint({"Weapons", "Alcoholic Beverages"})


def test_results_do_not_depend_on_segment_length_or_actor_count(ray_session, test_double_model, tmp_path):
    path = tmp_path / "colours.mp4"
    truth = make_colour_video(path, SEQUENCE, size=(96, 64), gop_s=1.0)
    runs = {}
    for segment_length_s, actors in [(100.0, 1), (1.0, 1), (4.0, 2)]:
        engine = LocalRunner(settings_for(test_double_model, segment_length_s, actors))
        try:
            run = engine.run(str(path), result_options(engine.settings))
        finally:
            engine.shutdown()
        runs[(segment_length_s, actors)] = ([detection_to_wire(d) for d in run.result.detections], len(run.outcomes))
    one_segment, many_segments, two_actors = runs.values()
    assert one_segment[1] == 1 and many_segments[1] >= 10
    assert one_segment[0] == many_segments[0] == two_actors[0]
    assert [(r["Timestamp"], r["ModerationLabel"]["Name"]) for r in one_segment[0]] == [
        (t, name) for t, name, _, _ in expected_detections(truth)
    ]


def test_segments_aggregation_through_the_pipeline(runner, tmp_path):
    truth = make_colour_video(tmp_path / "c.mp4", SEQUENCE, size=(96, 64))
    result = runner.moderate(str(tmp_path / "c.mp4"), aggregate_by="SEGMENTS")
    red = [(d.start_ms, d.end_ms) for d in result.detections if d.name == "Blood & Gore"]
    # red is on screen for the samples at 0, 1000, 2000 and again from 13.9 s to the end
    first_red_end = truth.frame_time_at(3000)
    last_sample = (truth.duration_ms - 1) // INTERVAL_MS * INTERVAL_MS
    assert red[0] == (0, first_red_end)
    assert red[1][0] == truth.frame_time_at(14000) and red[1][1] == truth.duration_ms
    assert len(red) == 2 and last_sample >= 14000
