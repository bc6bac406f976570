"""The whole hand pipeline on real photographs, and the ExtraDetector contract.

Photographs with bare hands: OpenCV's sample data as Debian ships it (package opencv-doc):
`right04.jpg` (a calibration shot: a hand holds a chessboard up, right of centre) and
`messi5.jpg` (a footballer, arms out). `make photos` unpacks just those two files into
`<venv>/share/modengine/photos`; without them those tests skip and say so. scikit-image's
photographs (always installed) show no bare hand and must yield none.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from models.hands.detector import (
    OUTPUT_NAMES,
    SOURCE_NAME,
    HandGestureDetector,
    load_hand_gesture_detector,
)
from models.hands.weights import HAND_LANDMARK_WEIGHTS, PALM_DETECTOR_WEIGHTS
from models.weight_cache import load_state

PHOTO_DIRS = (Path(sys.prefix) / "share" / "modengine" / "photos",
              Path("/usr/share/doc/opencv-doc/examples/data"))


def photo(name: str) -> np.ndarray:
    for directory in PHOTO_DIRS:
        if (directory / name).is_file():
            return np.array(Image.open(directory / name).convert("RGB"))
    pytest.skip(f"{name} (Debian opencv-doc sample data) not found in {[str(d) for d in PHOTO_DIRS]}"
                ": run `make photos`")


def squashed(image: np.ndarray, size: int = 224) -> np.ndarray:
    """As the engine's decoder hands frames over: scaled to size x size, aspect not kept."""
    return np.array(Image.fromarray(image).resize((size, size), Image.BILINEAR))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hand_weights")


@pytest.fixture(scope="module")
def detector(cache_dir) -> HandGestureDetector:
    return load_hand_gesture_detector(cache_dir)


def confident_hands(detector, image):
    return [h for h in detector.detect_hands(image[None]) if h.presence >= 0.5]


@pytest.mark.parametrize("name, region", [
    ("right04.jpg", (400, 180, 560, 400)),  # x_min, y_min, x_max, y_max of the visible hand
    ("messi5.jpg", (320, 120, 410, 210)),  # his left hand, at the image's right
])
def test_finds_the_bare_hand_in_a_photograph(detector, name, region):
    hands = confident_hands(detector, photo(name))
    assert len(hands) == 1, [(h.presence, h.square.tolist()) for h in hands]
    hand = hands[0]
    x, y = hand.square[:2].tolist()
    assert region[0] <= x <= region[2] and region[1] <= y <= region[3], hand.square
    assert hand.presence > 0.9
    wrist_to_tip = hand.landmarks[12, :2] - hand.landmarks[0, :2]
    assert wrist_to_tip.norm() > 0.2 * hand.square[2]  # landmarks span the hand, not a dot
    assert hand.middle_finger < 0.5  # holding / open hands are not the gesture


def test_finds_the_hand_in_a_224_frame(detector):
    scores = detector(squashed(photo("right04.jpg"))[None])[SOURCE_NAME]
    middle_finger, hand_present = scores[0]
    assert hand_present > 0.9 and middle_finger < 0.5


def test_photographs_without_bare_hands_yield_none(detector):
    frames = np.stack([squashed(getattr(skimage.data, name)())
                       for name in ("astronaut", "chelsea", "coffee", "rocket")])
    scores = detector(frames)[SOURCE_NAME]
    assert scores.shape == (4, len(OUTPUT_NAMES)) and scores.dtype == np.float32
    assert float(scores.max()) < 0.5, scores


def test_extra_detector_contract(detector):
    assert OUTPUT_NAMES == ("middle_finger", "hand_present")
    empty = detector(np.zeros((0, 224, 224, 3), dtype=np.uint8))[SOURCE_NAME]
    assert empty.shape == (0, 2)
    noise = np.random.default_rng(3).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    scores = detector(noise)[SOURCE_NAME]
    assert scores.shape == (3, 2) and ((scores >= 0) & (scores <= 1)).all()
    with pytest.raises(ValueError, match="uint8"):
        detector(noise.astype(np.float32))


def test_second_load_comes_from_the_cache(detector, cache_dir):
    for weights in (PALM_DETECTOR_WEIGHTS, HAND_LANDMARK_WEIGHTS):
        assert weights.cache_path(cache_dir).is_file()
        state, from_cache = load_state(weights, cache_dir)
        assert from_cache
        assert all(t.dtype in (torch.float32, torch.uint8) for t in state.values())
