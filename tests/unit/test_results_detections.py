"""Threshold, ancestor expansion and ordering against hand-computed expectations."""

import numpy as np
import pytest

from engine.api.wire import detection_to_wire
from engine.results import FrameScores, build_detections, sort_detections
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
    }
