"""A test double classifier: it reads the dominant colour of the top quarter of each frame and
reports one fixed label per colour. Pipeline tests use it so that every expected detection is
known exactly from how the test video was generated.

The top quarter (not the whole frame) is what it looks at, so an upside-down or sideways frame
(a rotation bug) gives a different answer than an upright one.
"""

from __future__ import annotations

import numpy as np

from models.base import ModelInfo
from models.taxonomy import Taxonomy, load_taxonomy

# colour name -> (RGB, (label name, parent name), confidence)
COLOUR_LABELS: dict[str, tuple[tuple[int, int, int], tuple[str, str], float]] = {
    "red": ((255, 0, 0), ("Blood & Gore", "Graphic Violence"), 95.0),
    "green": ((0, 255, 0), ("Gambling", "Gambling"), 80.0),
    "blue": ((0, 0, 255), ("Weapons", "Violence"), 65.0),
    "yellow": ((255, 255, 0), ("Alcoholic Beverages", "Alcohol"), 45.0),
    "magenta": ((255, 0, 255), ("Exposed Female Nipple", "Explicit Nudity"), 99.0),
}
NEUTRAL_COLOURS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "grey": (128, 128, 128),
}
INPUT_SIZE = (64, 64)


class ColourTestDoubleClassifier:
    """FrameClassifier test double: dominant colour -> one label (and its ancestors)."""

    def __init__(self) -> None:
        self.taxonomy: Taxonomy = load_taxonomy()
        self.info = ModelInfo(name="colour-test-double", version="test", input_size=INPUT_SIZE)
        palette = {name: rgb for name, (rgb, _, _) in COLOUR_LABELS.items()} | NEUTRAL_COLOURS
        self._palette_names = list(palette)
        self._palette = np.array([palette[name] for name in self._palette_names], dtype=np.float32)

    def dominant_colour(self, frame: np.ndarray) -> str:
        top = frame[: max(1, frame.shape[0] // 4)].reshape(-1, 3).astype(np.float32).mean(axis=0)
        return self._palette_names[int(np.argmin(((self._palette - top) ** 2).sum(axis=1)))]

    def classify(self, frames: np.ndarray) -> np.ndarray:
        scores = np.zeros((len(frames), len(self.taxonomy)), dtype=np.float32)
        for row, frame in enumerate(frames):
            colour = self.dominant_colour(frame)
            if colour not in COLOUR_LABELS:
                continue
            _, (name, parent), confidence = COLOUR_LABELS[colour]
            label = self.taxonomy.find(name, parent)
            scores[row, label.index] = confidence
            for ancestor in self.taxonomy.ancestors(label.index):
                scores[row, ancestor.index] = confidence
        return scores


def expected_labels(colour: str) -> list[tuple[str, int, float]]:
    """(name, level, confidence) of every entry the double emits for a colour, leaf first."""
    if colour not in COLOUR_LABELS:
        return []
    taxonomy = load_taxonomy()
    _, (name, parent), confidence = COLOUR_LABELS[colour]
    label = taxonomy.find(name, parent)
    chain = [label] + taxonomy.ancestors(label.index)
    return [(item.name, item.level, confidence) for item in chain]
