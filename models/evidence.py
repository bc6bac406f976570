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
class LabelEvidence:
    label_index: int
    combine: str
    terms: tuple[EvidenceTerm, ...]
    why: str


@dataclass(frozen=True)
class EvidenceMap:
    version: str
    taxonomy: Taxonomy
    sources: dict[str, SourceSpec]
    labels: tuple[LabelEvidence, ...]

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
        labels.append(LabelEvidence(label.index, raw["combine"], terms, raw.get("why", "")))
    if len({entry.label_index for entry in labels}) != len(labels):
        raise EvidenceMapError("a label is listed twice in the evidence map")
    return EvidenceMap(str(document["version"]), taxonomy, sources, tuple(labels))


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

    def own_evidence(self, probabilities: dict[str, np.ndarray], batch_size: int) -> np.ndarray:
        """Probability 0..1 per label from its own terms only, before the hierarchy."""
        own = np.zeros((batch_size, len(self.taxonomy)), dtype=np.float32)
        sources = self.evidence_map.sources
        calibrated = {name: sources[name].calibrate(np.asarray(values, dtype=np.float32))
                      for name, values in probabilities.items() if name in self.enabled_sources}
        for entry in self.evidence_map.labels:
            values = [
                _reduce(calibrated[term.source][:, list(term.indices)],
                        self.evidence_map.sources[term.source].reduce)
                for term in entry.terms
                if term.source in self.enabled_sources
            ]
            if values:
                stacked = np.stack(values, axis=1)
                own[:, entry.label_index] = (
                    stacked.mean(axis=1) if entry.combine == "mean" else stacked.max(axis=1)
                )
        return np.clip(own, 0.0, 1.0)

    def __call__(self, probabilities: dict[str, np.ndarray], batch_size: int) -> np.ndarray:
        confidences = self.own_evidence(probabilities, batch_size)
        # Children follow their parent in taxonomy order, so a reverse sweep lifts every
        # parent to its most confident descendant in one pass.
        for label in reversed(self.taxonomy.labels):
            if label.parent is not None:
                np.maximum(confidences[:, label.parent], confidences[:, label.index],
                           out=confidences[:, label.parent])
        return confidences * np.float32(100.0)
