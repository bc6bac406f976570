"""The optional NudeNet extra: box classes -> level-3 labels, tested with a fake detector."""

from __future__ import annotations

import numpy as np
import pytest

from models.evidence import EvidenceHead, load_evidence_map
from models.nudenet_extra import (
    SOURCE_NAME,
    NudeNetDetector,
    class_scores_from_raw,
    frames_to_detector_input,
    nudenet_installed,
)

ANCHORS = 2100


class FakeNudeNetSessionDouble:
    """Stands in for an onnxruntime session of 320n.onnx: fixed scores for chosen classes."""

    class _Input:
        name = "images"
        shape = (1, 3, 320, 320)

    def __init__(self, class_names: tuple[str, ...], scores: dict[str, float]) -> None:
        self.class_names = class_names
        self.scores = scores
        self.calls: list[tuple] = []

    def get_inputs(self):
        return [self._Input()]

    def run(self, _outputs, feeds):
        batch = feeds["images"]
        self.calls.append(batch.shape)
        raw = np.zeros((batch.shape[0], 4 + len(self.class_names), ANCHORS), dtype=np.float32)
        raw[:, :4, :] = 100.0  # box coordinates must never be read as scores
        for name, score in self.scores.items():
            raw[:, 4 + self.class_names.index(name), 17] = score
            raw[:, 4 + self.class_names.index(name), 18] = score / 2
        return [raw]


def nudenet_classes() -> tuple[str, ...]:
    return load_evidence_map().sources[SOURCE_NAME].outputs


def test_class_scores_take_each_class_best_anchor():
    raw = np.zeros((2, 4 + 3, 5), dtype=np.float32)
    raw[0, 4, 1], raw[0, 4, 3], raw[1, 6, 0] = 0.3, 0.9, 0.6
    raw[:, :4] = 50.0
    np.testing.assert_allclose(class_scores_from_raw(raw, 3), [[0.9, 0, 0], [0, 0, 0.6]])
    with pytest.raises(ValueError, match="expected raw detector output"):
        class_scores_from_raw(np.zeros((1, 5, 10)), 3)


def test_detector_input_is_rgb_unit_range_at_320():
    frames = np.zeros((2, 224, 224, 3), dtype=np.uint8)
    frames[..., 0] = 255
    inputs = frames_to_detector_input(frames, 320)
    assert inputs.shape == (2, 3, 320, 320) and inputs.dtype == np.float32
    assert np.allclose(inputs[:, 0], 1.0) and np.allclose(inputs[:, 1:], 0.0)


def test_box_classes_map_to_level_three_nudity_labels():
    classes = nudenet_classes()
    session = FakeNudeNetSessionDouble(classes, {
        "FEMALE_BREAST_EXPOSED": 0.81, "ANUS_EXPOSED": 0.66, "BUTTOCKS_EXPOSED": 0.2,
        "MALE_BREAST_EXPOSED": 0.7, "FACE_FEMALE": 0.99, "FEMALE_BREAST_COVERED": 0.95})
    detector = NudeNetDetector(num_classes=len(classes), session=session)
    frames = np.zeros((3, 224, 224, 3), dtype=np.uint8)
    evidence = detector(frames)
    assert session.calls == [(1, 3, 320, 320)] * 3  # fixed batch 1: one run per frame

    evidence_map = load_evidence_map()
    taxonomy = evidence_map.taxonomy
    head = EvidenceHead(evidence_map, {"xyran", "open_nsfw", "imagenet", SOURCE_NAME})
    quiet = {"xyran": np.tile([0.0, 0.0, 1.0], (3, 1)), "open_nsfw": np.tile([1.0, 0.0], (3, 1)),
             "imagenet": np.zeros((3, 1000))}
    scores = head({**quiet, **evidence}, 3)[0]

    def score(name):
        return float(scores[taxonomy.find(name).index])

    assert score("Exposed Female Nipple") == pytest.approx(81, abs=1e-3)
    assert score("Exposed Buttocks or Anus") == pytest.approx(66, abs=1e-3)  # max of the two
    assert score("Exposed Male Nipple") == pytest.approx(70, abs=1e-3)
    assert score("Exposed Male Genitalia") == 0 and score("Exposed Female Genitalia") == 0
    assert taxonomy.find("Exposed Female Nipple").level == 3
    assert score("Explicit Nudity") == pytest.approx(81, abs=1e-3)
    assert score("Explicit") == pytest.approx(81, abs=1e-3)
    assert score("Non-Explicit Nudity of Intimate parts and Kissing") == pytest.approx(70, abs=1e-3)
    # Faces and covered parts are not moderation labels.
    assert score("Obstructed Female Nipple") == 0


def test_disabled_nudenet_contributes_nothing():
    classes = nudenet_classes()
    evidence_map = load_evidence_map()
    head = EvidenceHead(evidence_map, {"xyran", "open_nsfw", "imagenet"})
    probabilities = {"xyran": np.array([[0.0, 0.0, 1.0]]), "open_nsfw": np.array([[1.0, 0.0]]),
                     "imagenet": np.zeros((1, 1000)), SOURCE_NAME: np.ones((1, len(classes)))}
    assert head(probabilities, 1).max() == 0


@pytest.mark.skipif(not nudenet_installed(), reason="optional nudenet extra not installed")
def test_real_nudenet_detector_runs_on_frames(tmp_path):
    from models.default import load_default_classifier

    classifier = load_default_classifier(tmp_path, precision="fp32", use_nudenet=True)
    assert classifier.info.name.endswith("+nudenet")
    frames = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    probabilities = classifier.source_probabilities(frames)
    assert probabilities[SOURCE_NAME].shape == (2, len(nudenet_classes()))
    assert classifier.classify(frames).shape == (2, len(classifier.taxonomy))
