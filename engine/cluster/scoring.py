"""One classifier's frames -> scores, with or without a Custom Moderation adapter.

Both model-serving actors use it: the shared pool's InferenceActor (engine/cluster/inference.py,
for jobs, DetectModerationLabels and training) and the Ray Data model stage of engine.batch
(videos and media analysis jobs), so an image scored on either gets the same columns by the
same code. A forward pass yields labels, content types and frame features together; a call
with an adapter takes the features, reads the adapter file (cached until the file changes) and
merges its labels into the hierarchy (models/adapter.py). Knows nothing of Ray or storage.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from models.adapter import (
    Adapter,
    AdapterError,
    adaptable_taxonomy,
    merge_adapter,
    merged_taxonomy,
    model_identity,
    outputs_and_features,
)
from models.base import FrameClassifier, check_confidences
from models.taxonomy import Taxonomy

ADAPTERS_DIR = "adapters"


def adapter_file(data_dir: Path, arn: str) -> Path:
    """Where a version's adapter lives: a small file in the data dir that the model-serving
    actors read (written by the server's training at the end of a successful training, removed
    with the version), so a local run can apply an adapter a server trained."""
    return Path(data_dir) / ADAPTERS_DIR / f"{hashlib.sha256(arn.encode()).hexdigest()[:32]}.npz"


def local_adapter_path(data_dir: Path, arn: str | None) -> str | None:
    """The file of adapter `arn` in this data dir for a local run (None: no adapter);
    AdapterError when the data dir holds no trained adapter of that ARN."""
    if arn is None:
        return None
    path = adapter_file(data_dir, arn)
    if not path.is_file():
        raise AdapterError(f"no trained adapter {arn} in {Path(data_dir) / ADAPTERS_DIR} (train "
                           "it with a server on this data dir, or pass its --data-dir)")
    return str(path)


class FrameScorer:
    """Rows of `(labels, content types, features)` for frames, and the scores callers take."""

    def __init__(self, classifier: FrameClassifier) -> None:
        self.classifier = classifier
        self.score_columns = len(classifier.taxonomy) + len(classifier.info.content_types)
        """Columns of a plain score row: the labels, then the content types."""
        self._adapters: dict[str, tuple[float, Adapter]] = {}

    def rows(self, frames: np.ndarray) -> np.ndarray:
        """(N, labels + content types + features): what every kind of call takes its part of."""
        outputs, features = outputs_and_features(self.classifier, frames)
        labels = check_confidences(self.classifier.taxonomy, outputs.labels, len(frames))
        return np.concatenate([labels, np.asarray(outputs.content_types, np.float32),
                               np.asarray(features, np.float32).reshape(len(frames), -1)], axis=1)

    def plain(self, rows: np.ndarray) -> np.ndarray:
        """Scores without an adapter: the labels, then the content types."""
        return rows[:, : self.score_columns]

    def features(self, rows: np.ndarray) -> np.ndarray:
        return rows[:, self.score_columns :]

    def adapted(self, rows: np.ndarray, adapter_path: str) -> np.ndarray:
        """Scores with the adapter's labels merged in: columns are
        `taxonomy_for(adapter_path)`'s labels, then the content types."""
        adapter = self.adapter(adapter_path)
        labels = len(self.classifier.taxonomy)
        _, merged = merge_adapter(
            adaptable_taxonomy(self.classifier), self.classifier.taxonomy, rows[:, :labels],
            adapter, adapter.confidences(self.features(rows)))
        return np.concatenate([merged, rows[:, labels : self.score_columns]], axis=1)

    def scores(self, rows: np.ndarray, adapter_path: str | None) -> np.ndarray:
        return self.plain(rows) if adapter_path is None else self.adapted(rows, adapter_path)

    def taxonomy_for(self, adapter_path: str | None) -> Taxonomy:
        """The label columns of `scores(rows, adapter_path)`."""
        if adapter_path is None:
            return self.classifier.taxonomy
        return merged_taxonomy(adaptable_taxonomy(self.classifier), self.classifier.taxonomy,
                               self.adapter(adapter_path))[0]

    def adapter(self, path: str) -> Adapter:
        """The adapter file at `path`, read once per change of the file."""
        try:
            modified = os.stat(path).st_mtime
        except OSError:
            raise AdapterError(f"the adapter file {path} is missing") from None
        cached = self._adapters.get(path)
        if cached is None or cached[0] != modified:
            with open(path, "rb") as handle:
                adapter = Adapter.from_bytes(handle.read())
            identity = model_identity(self.classifier)
            if adapter.base_model != identity:
                raise AdapterError(f"the adapter was trained on {adapter.base_model!r}, "
                                   f"this model is {identity!r}")
            self._adapters[path] = cached = (modified, adapter)
        return cached[1]
