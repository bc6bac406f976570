"""Threshold, ancestor expansion and ordering against hand-computed expectations."""

import numpy as np
import pytest

from engine.api.wire import detection_to_wire
from engine.results import FrameScores, aggregate_segments, build_detections, sort_detections
from models.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()


def scores(**by_label: float) -> np.ndarray:
    """Confidences with the named leaves set (ancestors left at 0: the builder must lift them)."""
    row = np.zeros(len(TAXONOMY), dtype=np.float32)
    for key, value in by_label.items():
        row[TAXONOMY.find(key.replace("_", " ")).index] = value
    return row


def wire(detections):
    return [(d.timestamp_ms, d.name, d.parent_name, d.level, round(d.confidence, 2)) for d in detections]


def test_leaf_expands_to_every_ancestor_with_levels_and_parent_names():
    frames = [FrameScores(1000, scores(Corpses=88.0))]
    assert wire(build_detections(TAXONOMY, frames, 50)) == [
        (1000, "Corpses", "Death and Emaciation", 3, 88.0),
        (1000, "Death and Emaciation", "Visually Disturbing", 2, 88.0),
        (1000, "Visually Disturbing", "", 1, 88.0),
    ]


def test_min_confidence_is_inclusive_and_drops_lower_labels():
    frames = [FrameScores(0, scores(Weapons=50.0, Pills=49.99))]
    assert wire(build_detections(TAXONOMY, frames, 50)) == [
        (0, "Violence", "", 1, 50.0),
        (0, "Weapons", "Violence", 2, 50.0),
    ]
    assert build_detections(TAXONOMY, frames, 50.01) == []


def test_parent_keeps_its_own_higher_confidence_and_takes_max_of_children():
    row = scores(Weapons=60.0, Weapon_Violence=70.0)
    row[TAXONOMY.find("Violence").index] = 90.0
    got = {(d.name, d.level): d.confidence for d in build_detections(TAXONOMY, [FrameScores(5, row)], 50)}
    assert got == {
        ("Violence", 1): 90.0,
        ("Weapons", 2): 60.0,
        ("Graphic Violence", 2): 70.0,
        ("Weapon Violence", 3): 70.0,
    }


def test_name_repeated_at_two_levels_gives_two_entries():
    row = np.zeros(len(TAXONOMY), dtype=np.float32)
    row[TAXONOMY.find("Gambling", parent_name="Gambling").index] = 77.0
    got = wire(build_detections(TAXONOMY, [FrameScores(0, row)], 50))
    assert got == [(0, "Gambling", "", 1, 77.0), (0, "Gambling", "Gambling", 2, 77.0)]


def test_timestamp_order_then_name():
    frames = [
        FrameScores(2000, scores(Pills=70.0)),
        FrameScores(0, scores(Weapons=80.0)),
    ]
    got = [(d.timestamp_ms, d.name) for d in build_detections(TAXONOMY, frames, 50)]
    assert got == [
        (0, "Violence"),
        (0, "Weapons"),
        (2000, "Drugs & Tobacco"),
        (2000, "Pills"),
        (2000, "Products"),
    ]


def test_name_order_groups_labels_and_sorts_confidence_descending():
    frames = [
        FrameScores(0, scores(Weapons=60.0)),
        FrameScores(1000, scores(Weapons=90.0, Pills=55.0)),
        FrameScores(2000, scores(Weapons=75.0)),
    ]
    got = [(d.name, d.confidence, d.timestamp_ms) for d in sort_detections(build_detections(TAXONOMY, frames, 50), "NAME")]
    assert got == [
        ("Drugs & Tobacco", 55.0, 1000),
        ("Pills", 55.0, 1000),
        ("Products", 55.0, 1000),
        ("Violence", 90.0, 1000),
        ("Violence", 75.0, 2000),
        ("Violence", 60.0, 0),
        ("Weapons", 90.0, 1000),
        ("Weapons", 75.0, 2000),
        ("Weapons", 60.0, 0),
    ]


def test_unknown_sort_is_refused():
    with pytest.raises(ValueError):
        sort_detections([], "CONFIDENCE")


def test_wire_shape_of_a_detection():
    detection = build_detections(TAXONOMY, [FrameScores(1999, scores(Smoking=66.666666))], 50)[-1]
    assert detection_to_wire(detection) == {
        "Timestamp": 1999,
        "ModerationLabel": {
            "Confidence": 66.6667,
            "Name": "Smoking",
            "ParentName": "Drugs & Tobacco Paraphernalia & Use",
            "TaxonomyLevel": 3,
        },
        "ContentTypes": [],
    }


def test_content_types_ride_on_every_detection_of_their_frame():
    from engine.results import reported_content_types, segment_detections

    assert reported_content_types(("Illustrated",), np.array([49.9])) == ()
    (illustrated,) = reported_content_types(("Illustrated",), np.array([91.25]))
    assert (illustrated.name, illustrated.confidence) == ("Illustrated", 91.25)
    rows = np.stack([np.append(scores(Smoking=80.0), 91.25), np.append(scores(Smoking=70.0), 10.0)])
    output = segment_detections(TAXONOMY, [0, 1000], rows, 50, ("Illustrated",))
    at_zero = [d for d in output.detections if d.timestamp_ms == 0]
    at_one = [d for d in output.detections if d.timestamp_ms == 1000]
    assert len(at_zero) == 3 and all(d.content_types == (illustrated,) for d in at_zero)
    assert len(at_one) == 3 and all(d.content_types == () for d in at_one)
    assert detection_to_wire(at_zero[0])["ContentTypes"] == [
        {"Confidence": 91.25, "Name": "Illustrated"}]
    (stretch, *_) = [d for d in aggregate_segments(output.detections, 1000)
                     if d.name == "Smoking"]
    assert stretch.content_types == (illustrated,)  # the strongest of its frames'

