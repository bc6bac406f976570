"""The moderation taxonomy as data: a tree of labels loaded from a JSON file in models/data.

Labels are identified by their position in a fixed depth-first order, not by name alone,
because a name may repeat at two levels (Rekognition v7 has "Gambling" under "Gambling").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class TaxonomyLabel:
    """One node of the tree. `parent` is the index of the parent node, or None at level 1."""

    index: int
    name: str
    level: int
    parent: int | None


@dataclass(frozen=True)
class Taxonomy:
    """An ordered label tree; a parent always comes before its children."""

    version: str
    labels: tuple[TaxonomyLabel, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def parent_name(self, label: TaxonomyLabel) -> str:
        """Rekognition's ParentName: the empty string at level 1."""
        return "" if label.parent is None else self.labels[label.parent].name

    def ancestors(self, index: int) -> list[TaxonomyLabel]:
        """The ancestors of a label, nearest first."""
        found = []
        parent = self.labels[index].parent
        while parent is not None:
            found.append(self.labels[parent])
            parent = self.labels[parent].parent
        return found

    def children(self, index: int) -> list[TaxonomyLabel]:
        return [label for label in self.labels if label.parent == index]

    def find(self, name: str, parent_name: str | None = None) -> TaxonomyLabel:
        """Look a label up by name; `parent_name` disambiguates names used at two levels."""
        matches = [
            label
            for label in self.labels
            if label.name == name and (parent_name is None or self.parent_name(label) == parent_name)
        ]
        if not matches:
            raise KeyError(f"no label named {name!r} in taxonomy {self.version}")
        if len(matches) > 1:
            # The deepest match is the useful default: a leaf carries the evidence.
            return max(matches, key=lambda label: label.level)
        return matches[0]

    def names(self) -> list[str]:
        return [label.name for label in self.labels]

    def with_ancestors(self, indices) -> list[int]:
        """`indices` and every ancestor of them, in taxonomy order."""
        keep = set(indices)
        for index in list(keep):
            keep.update(ancestor.index for ancestor in self.ancestors(index))
        return sorted(keep)

    def restricted_to(self, indices: list[int]) -> Taxonomy:
        """The sub-tree of the labels at `indices` (which must hold every ancestor of each, as
        with_ancestors gives them), re-indexed in the same order: the labels a model with
        partial coverage can actually report."""
        new_index = {old: position for position, old in enumerate(indices)}
        kept = [self.labels[old] for old in indices]
        if any(label.parent is not None and label.parent not in new_index for label in kept):
            raise ValueError("a restricted taxonomy must keep every ancestor of its labels")
        return Taxonomy(self.version, tuple(
            TaxonomyLabel(new_index[label.index], label.name, label.level,
                          None if label.parent is None else new_index[label.parent])
            for label in kept))


def build_taxonomy(version: str, tree: dict) -> Taxonomy:
    """Flatten a nested {name: {child: {...}}} mapping into an ordered Taxonomy."""
    labels: list[TaxonomyLabel] = []

    def visit(subtree: dict, parent: int | None, level: int) -> None:
        for name, children in subtree.items():
            if level > 3:
                raise ValueError(f"label {name!r} is deeper than the 3 levels Rekognition allows")
            index = len(labels)
            labels.append(TaxonomyLabel(index=index, name=name, level=level, parent=parent))
            visit(children, index, level + 1)

    visit(tree, None, 1)
    return Taxonomy(version=version, labels=tuple(labels))


@cache
def load_taxonomy(filename: str = "taxonomy_v7.json") -> Taxonomy:
    """Load a taxonomy file shipped in models/data."""
    text = resources.files("models").joinpath("data", filename).read_text(encoding="utf-8")
    document = json.loads(text)
    return build_taxonomy(str(document["version"]), document["tree"])
