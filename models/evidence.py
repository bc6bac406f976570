"""The hierarchical head: backbone outputs -> per-label evidence -> taxonomy confidences.

What counts as evidence for which label is data (models/data/evidence_v7.json), so it can be
read, reviewed and rendered into models/COVERAGE.md. This module only interprets it. It knows
nothing about how the backbone outputs were produced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from models.taxonomy import Taxonomy, load_taxonomy

REDUCERS = ("sum", "max")
COMBINERS = ("mean", "max")
CONTENT_TYPE_NAMES = ("Animated", "Illustrated")  # Rekognition's ContentType names


class EvidenceMapError(ValueError):
    """The mapping file names a label, source or output that does not exist."""


@dataclass(frozen=True)
class SourceSpec:
    name: str
    backbone: str
    outputs: tuple[str, ...] | None  # None: outputs are addressed by integer class index
    reduce: str
    optional: bool
    calibration: tuple[float, float] | None = None  # (floor, ceiling) of the raw outputs

    def calibrate(self, probabilities: np.ndarray) -> np.ndarray:
        """Map the source's attainable range [floor, ceiling] onto [0, 1]."""
        if self.calibration is None:
            return probabilities
        floor, ceiling = self.calibration
        return np.clip((probabilities - floor) / (ceiling - floor), 0.0, 1.0)

    def output_index(self, output: str | int) -> int:
        if self.outputs is None:
            if not isinstance(output, int):
                raise EvidenceMapError(f"source {self.name!r} takes class indices, got {output!r}")
            return output
        if output not in self.outputs:
            raise EvidenceMapError(f"source {self.name!r} has no output {output!r}")
        return self.outputs.index(output)


@dataclass(frozen=True)
class EvidenceTerm:
    source: str
    indices: tuple[int, ...]
    names: tuple[str, ...]  # readable names of the outputs, for the coverage table


@dataclass(frozen=True)
class CombinedEvidence:
    """Terms and how they combine into one probability, with the reason, for a label or a
    content type."""

    combine: str
    terms: tuple[EvidenceTerm, ...]
    why: str


@dataclass(frozen=True)
class LabelEvidence(CombinedEvidence):
    label_index: int = 0


@dataclass(frozen=True)
class ContentTypeEvidence(CombinedEvidence):
    """A Rekognition ContentType ("Animated", "Illustrated"): not a label of the taxonomy but
    a property of the whole frame, reported beside the labels."""

    name: str = ""


@dataclass(frozen=True)
class EvidenceMap:
    version: str
    taxonomy: Taxonomy
    sources: dict[str, SourceSpec]
    labels: tuple[LabelEvidence, ...]
    content_types: tuple[ContentTypeEvidence, ...] = ()

    def for_label(self, index: int) -> LabelEvidence | None:
        return next((entry for entry in self.labels if entry.label_index == index), None)


def _parse_source(name: str, raw: dict) -> SourceSpec:
    outputs = raw["outputs"]
    calibration = raw.get("calibration")
    spec = SourceSpec(
        name=name,
        backbone=str(raw["backbone"]),
        outputs=tuple(outputs) if isinstance(outputs, list) else None,
        reduce=raw["reduce"],
        optional=bool(raw.get("optional", False)),
        calibration=(float(calibration["floor"]), float(calibration["ceiling"]))
        if calibration else None,
    )
    if spec.calibration and not 0.0 <= spec.calibration[0] < spec.calibration[1] <= 1.0:
        raise EvidenceMapError(f"source {name!r}: calibration needs 0 <= floor < ceiling <= 1")
    if spec.reduce not in REDUCERS:
        raise EvidenceMapError(f"source {name!r}: reduce must be one of {REDUCERS}")
    return spec


def _parse_term(raw: dict, sources: dict[str, SourceSpec]) -> EvidenceTerm:
    source = sources.get(raw["source"])
    if source is None:
        raise EvidenceMapError(f"unknown evidence source {raw['source']!r}")
    indices = tuple(source.output_index(output) for output in raw["outputs"])
    names = tuple(raw.get("names") or [str(output) for output in raw["outputs"]])
    if len(names) != len(indices):
        raise EvidenceMapError(f"term {raw}: names and outputs differ in length")
    return EvidenceTerm(source=source.name, indices=indices, names=names)


def parse_evidence_map(document: dict, taxonomy: Taxonomy) -> EvidenceMap:
    sources = {name: _parse_source(name, raw) for name, raw in document["sources"].items()}
    labels = []
    for raw in document["labels"]:
        label = taxonomy.find(raw["label"], parent_name=raw["parent"])
        if raw["combine"] not in COMBINERS:
            raise EvidenceMapError(f"{raw['label']!r}: combine must be one of {COMBINERS}")
        terms = tuple(_parse_term(term, sources) for term in raw["evidence"])
        labels.append(LabelEvidence(raw["combine"], terms, raw.get("why", ""),
                                    label_index=label.index))
    if len({entry.label_index for entry in labels}) != len(labels):
        raise EvidenceMapError("a label is listed twice in the evidence map")
    content_types = tuple(_parse_content_type(raw, sources)
                          for raw in document.get("content_types", ()))
    return EvidenceMap(str(document["version"]), taxonomy, sources, tuple(labels), content_types)


def _parse_content_type(raw: dict, sources: dict[str, SourceSpec]) -> ContentTypeEvidence:
    if raw["name"] not in CONTENT_TYPE_NAMES:
        raise EvidenceMapError(f"content type must be one of {CONTENT_TYPE_NAMES}, "
                               f"got {raw['name']!r}")
    if raw["combine"] not in COMBINERS:
        raise EvidenceMapError(f"{raw['name']!r}: combine must be one of {COMBINERS}")
    terms = tuple(_parse_term(term, sources) for term in raw["evidence"])
    return ContentTypeEvidence(raw["combine"], terms, raw.get("why", ""), name=raw["name"])


@cache
def load_evidence_map(filename: str = "evidence_v7.json") -> EvidenceMap:
    """Load a mapping file shipped in models/data, with the taxonomy it names."""
    text = resources.files("models").joinpath("data", filename).read_text(encoding="utf-8")
    document = json.loads(text)
    return parse_evidence_map(document, load_taxonomy(document["taxonomy"]))


def _reduce(values: np.ndarray, how: str) -> np.ndarray:
    return values.sum(axis=1) if how == "sum" else values.max(axis=1)


class EvidenceHead:
    """Turns source probabilities {source: (N, C) in 0..1} into confidences (N, labels) 0..100."""

    def __init__(self, evidence_map: EvidenceMap, enabled_sources: set[str]) -> None:
        unknown = enabled_sources - set(evidence_map.sources)
        if unknown:
            raise EvidenceMapError(f"enabled sources not in the evidence map: {sorted(unknown)}")
        self.evidence_map = evidence_map
        self.taxonomy = evidence_map.taxonomy
        self.enabled_sources = frozenset(enabled_sources)
        # The content types some enabled source gives evidence for, in map order (fixed for
        # the head's life: worked out once, not per batch).
        self._content_type_entries = tuple(
            entry for entry in evidence_map.content_types
            if any(term.source in self.enabled_sources for term in entry.terms))
        self.content_type_names = tuple(entry.name for entry in self._content_type_entries)

    def _calibrated(self, probabilities: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        sources = self.evidence_map.sources
        return {name: sources[name].calibrate(np.asarray(values, dtype=np.float32))
                for name, values in probabilities.items() if name in self.enabled_sources}

    def _combined(self, calibrated: dict[str, np.ndarray], terms: tuple[EvidenceTerm, ...],
                  combine: str) -> np.ndarray | None:
        """One label's (or content type's) evidence 0..1 from its enabled terms; None when no
        term's source is enabled (nothing loaded can see it)."""
        values = [
            _reduce(calibrated[term.source][:, list(term.indices)],
                    self.evidence_map.sources[term.source].reduce)
            for term in terms if term.source in self.enabled_sources
        ]
        if not values:
            return None
        stacked = np.stack(values, axis=1)
        return stacked.mean(axis=1) if combine == "mean" else stacked.max(axis=1)

    def own_evidence(self, probabilities: dict[str, np.ndarray], batch_size: int) -> np.ndarray:
        """Probability 0..1 per label from its own terms only, before the hierarchy."""
        own = np.zeros((batch_size, len(self.taxonomy)), dtype=np.float32)
        calibrated = self._calibrated(probabilities)
        for entry in self.evidence_map.labels:
            combined = self._combined(calibrated, entry.terms, entry.combine)
            if combined is not None:
                own[:, entry.label_index] = combined
        return np.clip(own, 0.0, 1.0)

    def covered_labels(self) -> list[int]:
        """The labels some enabled source gives evidence for, with their ancestors (lifted by
        them), in taxonomy order: all that this head can ever report. The rest are not
        reported at any MinConfidence: a label nothing loaded can see is not a 0% finding."""
        seen = [entry.label_index for entry in self.evidence_map.labels
                if any(term.source in self.enabled_sources for term in entry.terms)]
        return self.taxonomy.with_ancestors(seen)

    def content_types(self, probabilities: dict[str, np.ndarray], batch_size: int) -> np.ndarray:
        """Confidence 0..100 per frame of each of `content_type_names`: (N, C)."""
        calibrated = self._calibrated(probabilities)
        columns = [self._combined(calibrated, entry.terms, entry.combine)
                   for entry in self._content_type_entries]
        if not columns:
            return np.zeros((batch_size, 0), dtype=np.float32)
        return np.clip(np.stack(columns, axis=1), 0.0, 1.0).astype(np.float32) * np.float32(100)

    def __call__(self, probabilities: dict[str, np.ndarray], batch_size: int) -> np.ndarray:
        confidences = self.own_evidence(probabilities, batch_size)
        # Children follow their parent in taxonomy order, so a reverse sweep lifts every
        # parent to its most confident descendant in one pass.
        for label in reversed(self.taxonomy.labels):
            if label.parent is not None:
                np.maximum(confidences[:, label.parent], confidences[:, label.index],
                           out=confidences[:, label.parent])
        return confidences * np.float32(100.0)
