"""Custom Moderation adapters: a small logistic head per adapted label over a frozen model's
frame features, and the merge of its confidences into the model's label hierarchy.

Training (`fit_adapter`) standardises the features of the training split, fits one
class-balanced, L2-regularised logistic regression per label, then calibrates each head on the
testing split: the logit boundary that gives the best F1 there is shifted onto the version's
ConfidenceThreshold, so "confidence >= threshold" is exactly the decision the evaluation
measured. `merge_adapter` puts the adapted confidences into the base model's scores: an adapted
label replaces the base confidence of that label, caps its (unadapted) descendants at it, and
its ancestors are recomputed, so a parent is never below a child. An adapter may add labels the
base model does not cover; the merged taxonomy is the base one widened by them (with their
ancestors). Pure numpy: knows nothing of Ray, storage or the wire.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np

from models.base import FrameClassifier, FrameOutputs, classify_frames
from models.taxonomy import Taxonomy

FORMAT_VERSION = 1
L2_PENALTY = 1e-2
"""Ridge penalty on the standardised weights: a few dozen images must not be memorised."""
ITERATIONS = 400
LEARNING_RATE = 0.5
PROBABILITY_FLOOR = 1e-4
"""Source probabilities are turned into features as log(max(p, floor))."""


class AdapterError(ValueError):
    """An adapter file is damaged, or was trained on another model than the one loaded."""


@dataclass(frozen=True)
class Adapter:
    """One trained adapter: a logistic head per label over standardised features."""

    labels: tuple[tuple[str, str], ...]
    """(Name, ParentName) of each adapted label in the model's full taxonomy."""
    feature_mean: np.ndarray
    feature_scale: np.ndarray
    weights: np.ndarray
    """(labels, features)."""
    bias: np.ndarray
    """(labels,), calibration included: logit 0 is ConfidenceThreshold."""
    threshold: float
    """The version's ConfidenceThreshold (0..100)."""
    base_model: str
    """`model_identity` of the classifier whose features it was trained on."""

    def logits(self, features: np.ndarray) -> np.ndarray:
        standard = (np.asarray(features, np.float64) - self.feature_mean) / self.feature_scale
        return standard @ self.weights.T + self.bias

    def confidences(self, features: np.ndarray) -> np.ndarray:
        """(N, labels) confidences 0..100; >= `threshold` exactly where the calibrated head
        says the label is present."""
        shifted = self.logits(features) + _logit(self.threshold / 100.0)
        return (100.0 / (1.0 + np.exp(-np.clip(shifted, -60, 60)))).astype(np.float32)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        header = {"format": FORMAT_VERSION, "labels": [list(label) for label in self.labels],
                  "threshold": self.threshold, "base_model": self.base_model}
        np.savez(buffer, header=np.frombuffer(json.dumps(header).encode(), np.uint8),
                 feature_mean=self.feature_mean, feature_scale=self.feature_scale,
                 weights=self.weights, bias=self.bias)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Adapter:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                header = json.loads(arrays["header"].tobytes().decode())
                if header.get("format") != FORMAT_VERSION:
                    raise AdapterError(f"adapter format {header.get('format')!r} is not "
                                       f"{FORMAT_VERSION}")
                adapter = cls(tuple((str(n), str(p)) for n, p in header["labels"]),
                              arrays["feature_mean"], arrays["feature_scale"], arrays["weights"],
                              arrays["bias"], float(header["threshold"]),
                              str(header["base_model"]))
        except AdapterError:
            raise
        except Exception as error:  # noqa: BLE001 - any unreadable file is a damaged adapter
            raise AdapterError(f"the adapter file cannot be read ({type(error).__name__})") from None
        if adapter.weights.shape != (len(adapter.labels), len(adapter.feature_mean)):
            raise AdapterError("the adapter's weights do not match its labels and features")
        return adapter


def model_identity(classifier: FrameClassifier) -> str:
    """What an adapter must have been trained on to be used with this classifier."""
    info = classifier.info
    return f"{info.name} {info.version} {'+'.join(info.sources)}".strip()


def adaptable_taxonomy(classifier: FrameClassifier) -> Taxonomy:
    """Every label an adapter may add: the model's whole taxonomy, not only what it covers."""
    return getattr(classifier, "adaptable_taxonomy", classifier.taxonomy)


def outputs_and_features(classifier: FrameClassifier,
                         frames: np.ndarray) -> tuple[FrameOutputs, np.ndarray]:
    """A batch's outputs and its frame features (N, F) from one forward pass. A classifier
    without `classify_with_features` (a test double) offers its label confidences / 100."""
    if hasattr(classifier, "classify_with_features"):
        return classifier.classify_with_features(frames)
    outputs = classify_frames(classifier, frames)
    return outputs, np.asarray(outputs.labels, np.float32) / np.float32(100.0)


def probability_features(probabilities: dict[str, np.ndarray]) -> np.ndarray:
    """Frozen-backbone features: every source's outputs, log-scaled, in source-name order."""
    parts = [np.log(np.maximum(np.asarray(probabilities[name], np.float32).reshape(
        len(probabilities[name]), -1), PROBABILITY_FLOOR)) for name in sorted(probabilities)]
    return np.concatenate(parts, axis=1).astype(np.float32)


# -- training ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelEvaluation:
    """One adapted label on the testing split, at the version's threshold."""

    name: str
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int

    @property
    def f1(self) -> float:
        return _f1(self.true_positives, self.false_positives, self.false_negatives)


@dataclass(frozen=True)
class AdapterFit:
    adapter: Adapter
    evaluations: tuple[LabelEvaluation, ...]
    test_confidences: np.ndarray
    """(test images, labels): what the adapter gives each testing image."""

    @property
    def f1(self) -> float:
        """Micro-averaged over the labels: every (image, label) decision counts once."""
        return _f1(sum(e.true_positives for e in self.evaluations),
                   sum(e.false_positives for e in self.evaluations),
                   sum(e.false_negatives for e in self.evaluations))


def fit_adapter(labels: tuple[tuple[str, str], ...], train_features: np.ndarray,
                train_targets: np.ndarray, test_features: np.ndarray, test_targets: np.ndarray,
                threshold: float, base_model: str) -> AdapterFit:
    """Train and calibrate one head per label. targets: bool (images, labels)."""
    train_features = np.asarray(train_features, np.float64)
    mean = train_features.mean(axis=0)
    scale = train_features.std(axis=0)
    scale[scale < 1e-6] = 1.0
    standard = (train_features - mean) / scale
    weights = np.zeros((len(labels), standard.shape[1]))
    bias = np.zeros(len(labels))
    for column in range(len(labels)):
        weights[column], bias[column] = _logistic_regression(standard, train_targets[:, column])
    raw = ((np.asarray(test_features, np.float64) - mean) / scale) @ weights.T + bias
    for column in range(len(labels)):
        bias[column] -= _best_boundary(raw[:, column], test_targets[:, column])
    adapter = Adapter(tuple(labels), mean, scale, weights, bias, float(threshold), base_model)
    confidences = adapter.confidences(test_features)
    evaluations = tuple(
        _evaluate(name, confidences[:, column] >= threshold, test_targets[:, column])
        for column, (name, _) in enumerate(labels))
    return AdapterFit(adapter, evaluations, confidences)


def _logistic_regression(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Class-balanced logistic regression by full-batch gradient descent (convex: it converges
    from zero, and a few hundred steps suffice on standardised features)."""
    y = np.asarray(y, np.float64)
    positives = max(y.sum(), 1.0)
    negatives = max(len(y) - y.sum(), 1.0)
    sample_weight = np.where(y > 0, 0.5 / positives, 0.5 / negatives)
    w, b = np.zeros(x.shape[1]), 0.0
    step = LEARNING_RATE / max(1.0, float(np.mean(np.sum(x * x, axis=1))) ** 0.5)
    for _ in range(ITERATIONS):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w + b, -60, 60)))
        residual = (p - y) * sample_weight
        w -= step * (x.T @ residual + L2_PENALTY * w)
        b -= step * residual.sum() * 4
    return w, b


def _best_boundary(logits: np.ndarray, targets: np.ndarray) -> float:
    """The logit boundary with the best F1 on these images: a midpoint between two of their
    logits (never on one, so rounding cannot move an image across), nearest 0 among ties."""
    ordered = np.unique(logits)
    candidates = np.concatenate([[ordered[0] - 1.0], (ordered[:-1] + ordered[1:]) / 2,
                                 [ordered[-1] + 1.0], [0.0]])
    if np.any(np.abs(logits) < 1e-3):  # 0 sits on an image: not a safe boundary
        candidates = candidates[:-1]
    targets = np.asarray(targets, bool)

    def score(boundary: float) -> tuple[float, float]:
        predicted = logits >= boundary
        tp = int(np.sum(predicted & targets))
        return (_f1(tp, int(np.sum(predicted & ~targets)), int(np.sum(~predicted & targets))),
                -abs(boundary))

    return float(max(candidates, key=score))


def _evaluate(name: str, predicted: np.ndarray, targets: np.ndarray) -> LabelEvaluation:
    targets = np.asarray(targets, bool)
    return LabelEvaluation(name, int(np.sum(predicted & targets)), int(np.sum(predicted & ~targets)),
                           int(np.sum(~predicted & targets)), int(np.sum(~predicted & ~targets)))


def _f1(tp: int, fp: int, fn: int) -> float:
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def _logit(probability: float) -> float:
    probability = min(max(probability, 1e-6), 1 - 1e-6)
    return float(np.log(probability / (1 - probability)))


# -- inference --------------------------------------------------------------------------------


def merged_taxonomy(full: Taxonomy, base: Taxonomy, adapter: Adapter) -> tuple[Taxonomy, list[int]]:
    """The base taxonomy widened by the adapter's labels (and their ancestors), and the index in
    `full` of each of its labels."""
    keys = {(label.name, full.parent_name(label)): label.index for label in full.labels}
    base_indices = [keys[(label.name, base.parent_name(label))] for label in base.labels]
    missing = [label for label in adapter.labels if label not in keys]
    if missing:
        raise AdapterError(f"the adapter's labels {missing} are not in taxonomy {full.version}")
    columns = full.with_ancestors(base_indices + [keys[label] for label in adapter.labels])
    return full.restricted_to(columns), columns


def merge_adapter(full: Taxonomy, base: Taxonomy, base_scores: np.ndarray, adapter: Adapter,
                  adapted: np.ndarray) -> tuple[Taxonomy, np.ndarray]:
    """Base confidences (N, len(base)) with the adapter's (N, labels) merged in: returns the
    widened taxonomy and (N, len(it)) confidences 0..100."""
    taxonomy, columns = merged_taxonomy(full, base, adapter)
    position = {full_index: column for column, full_index in enumerate(columns)}
    keys = {(label.name, full.parent_name(label)): label.index for label in full.labels}
    original = np.zeros((len(base_scores), len(taxonomy)), np.float32)
    for base_label in base.labels:
        full_index = keys[(base_label.name, base.parent_name(base_label))]
        original[:, position[full_index]] = base_scores[:, base_label.index]
    merged = original.copy()
    adapted_columns = {position[keys[label]]: k for k, label in enumerate(adapter.labels)}
    for column in sorted(adapted_columns):  # parents first: a child's own head wins below it
        value = adapted[:, adapted_columns[column]]
        merged[:, column] = value
        for descendant in _descendants(taxonomy, column):
            if descendant not in adapted_columns:
                np.minimum(merged[:, descendant], value, out=merged[:, descendant])
    touched = {ancestor.index for column in adapted_columns
               for ancestor in taxonomy.ancestors(column)} - set(adapted_columns)
    for parent in sorted(touched, reverse=True):  # deepest first
        children = [child.index for child in taxonomy.children(parent)]
        before = original[:, children].max(axis=1)
        after = merged[:, children].max(axis=1)
        lifted = original[:, parent] <= before + 1e-4  # the old value came from a child
        merged[:, parent] = np.where(lifted, after, np.maximum(original[:, parent], after))
    for label in reversed(taxonomy.labels):
        if label.parent is not None:
            np.maximum(merged[:, label.parent], merged[:, label.index],
                       out=merged[:, label.parent])
    return taxonomy, np.clip(merged, 0.0, 100.0)


def _descendants(taxonomy: Taxonomy, index: int) -> list[int]:
    return [label.index for label in taxonomy.labels
            if any(ancestor.index == index for ancestor in taxonomy.ancestors(label.index))]
