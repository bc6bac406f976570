"""models/adapter.py: training and calibration on separable features, the file round trip,
and the merge into the hierarchy (replace, cap the children, recompute the ancestors)."""

from __future__ import annotations

import numpy as np
import pytest

from models.adapter import Adapter, AdapterError, fit_adapter, merge_adapter, merged_taxonomy
from models.taxonomy import load_taxonomy

FULL = load_taxonomy()


def separable(count: int, seed: int):
    rng = np.random.default_rng(seed)
    targets = np.arange(count) % 2 == 0
    features = rng.normal(0, 1, (count, 6)) + targets[:, None] * 3.0
    return features, targets[:, None]


def fitted(threshold: float = 70.0):
    train, train_targets = separable(40, 1)
    test, test_targets = separable(20, 2)
    return fit_adapter((("Drinking", "Alcohol Use"),), train, train_targets, test, test_targets,
                       threshold, "test-model"), test, test_targets


def test_the_threshold_is_the_decision_the_evaluation_measured():
    fit, test, targets = fitted(threshold=70.0)
    confidences = fit.adapter.confidences(test)[:, 0]
    predicted = confidences >= 70.0
    tp = int(np.sum(predicted & targets[:, 0]))
    fp = int(np.sum(predicted & ~targets[:, 0]))
    fn = int(np.sum(~predicted & targets[:, 0]))
    assert fit.f1 == pytest.approx(2 * tp / (2 * tp + fp + fn)) and fit.f1 > 0.9
    assert np.min(np.abs(confidences - 70.0)) > 1e-3  # no image sits on the boundary


def test_an_adapter_file_round_trips_and_a_damaged_one_is_refused():
    fit, test, _ = fitted()
    again = Adapter.from_bytes(fit.adapter.to_bytes())
    assert again.labels == fit.adapter.labels and again.base_model == "test-model"
    np.testing.assert_array_equal(again.confidences(test), fit.adapter.confidences(test))
    with pytest.raises(AdapterError):
        Adapter.from_bytes(b"not an adapter")


def adapter_for(*labels) -> Adapter:
    return Adapter(tuple(labels), np.zeros(1), np.ones(1), np.zeros((len(labels), 1)),
                   np.zeros(len(labels)), 50.0, "m")


def index(taxonomy, name, parent):
    return taxonomy.find(name, parent).index


def test_an_adapted_label_replaces_caps_its_children_and_lifts_or_lowers_its_parent():
    base = FULL  # the colour double's taxonomy: everything covered
    scores = np.zeros((1, len(base)), np.float32)
    for name, parent, value in (("Drugs & Tobacco", "", 80.0),
                                ("Drugs & Tobacco Paraphernalia & Use", "Drugs & Tobacco", 80.0),
                                ("Smoking", "Drugs & Tobacco Paraphernalia & Use", 80.0),
                                ("Products", "Drugs & Tobacco", 30.0)):
        scores[0, index(base, name, parent)] = value
    adapter = adapter_for(("Drugs & Tobacco Paraphernalia & Use", "Drugs & Tobacco"))
    taxonomy, merged = merge_adapter(FULL, base, scores, adapter, np.array([[10.0]]))
    assert merged[0, index(taxonomy, "Drugs & Tobacco Paraphernalia & Use", "Drugs & Tobacco")] == 10
    assert merged[0, index(taxonomy, "Smoking", "Drugs & Tobacco Paraphernalia & Use")] == 10
    # The parent was lifted by the replaced child: it falls to its highest child now.
    assert merged[0, index(taxonomy, "Drugs & Tobacco", "")] == 30
    taxonomy, merged = merge_adapter(FULL, base, scores, adapter, np.array([[95.0]]))
    assert merged[0, index(taxonomy, "Drugs & Tobacco", "")] == 95
    assert merged[0, index(taxonomy, "Smoking", "Drugs & Tobacco Paraphernalia & Use")] == 80
    for label in taxonomy.labels:
        if label.parent is not None:
            assert merged[0, label.parent] >= merged[0, label.index]


def test_an_adapter_widens_a_restricted_taxonomy_with_its_labels_and_their_ancestors():
    covered = FULL.with_ancestors([index(FULL, "Weapons", "Violence")])
    base = FULL.restricted_to(covered)
    taxonomy, _columns = merged_taxonomy(FULL, base, adapter_for(("Smoking", "Drugs & Tobacco Paraphernalia & Use")))
    assert taxonomy.names() == ["Violence", "Weapons", "Drugs & Tobacco",
                                "Drugs & Tobacco Paraphernalia & Use", "Smoking"]
    scores = np.array([[70.0, 70.0]], np.float32)
    _widened, merged = merge_adapter(FULL, base, scores, adapter_for(
        ("Smoking", "Drugs & Tobacco Paraphernalia & Use")), np.array([[88.0]]))
    assert merged.tolist() == [[70.0, 70.0, 88.0, 88.0, 88.0]]
    with pytest.raises(AdapterError, match="not in taxonomy"):
        merged_taxonomy(FULL, base, adapter_for(("Vaping", "")))
