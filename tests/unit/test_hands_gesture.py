"""The Middle Finger rule on synthetic hands (tests/hand_poses.py builds them from joint
angles): only the gesture itself fires, at any rotation, for left and right hands."""

from __future__ import annotations

import pytest
import torch

from models.hands.gesture import finger_reach, middle_finger_score
from tests.hand_poses import CURLED, EXTENDED, POSES, HandPose, hand_in_own_frame, place_in_crop

FIRES, SILENT = 0.9, 0.1
HANDS = [False, True]  # right, left (mirrored)
ROTATIONS = [0, 90, 180, 270, 35]


def landmarks(pose: str | HandPose, rotation: float, left: bool, **placement) -> torch.Tensor:
    pose = POSES[pose] if isinstance(pose, str) else pose
    return place_in_crop(hand_in_own_frame(pose), rotation, left, **placement)


@pytest.mark.parametrize("left", HANDS, ids=["right", "left"])
@pytest.mark.parametrize("rotation", ROTATIONS)
def test_middle_finger_up_fires(rotation, left):
    assert middle_finger_score(landmarks("middle_finger", rotation, left)).item() >= FIRES


@pytest.mark.parametrize("left", HANDS, ids=["right", "left"])
@pytest.mark.parametrize("rotation", ROTATIONS)
@pytest.mark.parametrize("pose", ["fist", "open_palm", "pointing_index", "peace_sign",
                                  "thumbs_up"])
def test_other_gestures_stay_silent(pose, rotation, left):
    assert middle_finger_score(landmarks(pose, rotation, left)).item() <= SILENT


@pytest.mark.parametrize("tilt", [-40.0, 40.0])
def test_rule_survives_tilting_the_hand_out_of_the_image_plane(tilt):
    assert middle_finger_score(landmarks("middle_finger", 20, False, tilt_deg=tilt)) >= FIRES
    assert middle_finger_score(landmarks("peace_sign", 20, False, tilt_deg=tilt)) <= SILENT


def test_score_fades_as_the_middle_finger_bends():
    scores = []
    for bend in (0.0, 20.0, 40.0, 60.0, 80.0):
        pose = POSES["middle_finger"]
        fingers = dict(pose.fingers, middle=(bend, bend, bend / 2))
        scores.append(middle_finger_score(landmarks(HandPose(fingers, {}, 80.0, 35.0), 0,
                                                    False)).item())
    assert scores[0] >= FIRES and scores[-1] <= SILENT
    assert scores == sorted(scores, reverse=True)


def test_reach_measures_fingers_in_the_hands_own_frame():
    fingers = {"index": EXTENDED, "middle": CURLED, "ring": EXTENDED, "pinky": CURLED}
    for rotation in (0, 120):
        reach = finger_reach(landmarks(HandPose(fingers, {}, 55.0, 5.0), rotation, True))
        assert reach[[0, 2]].min() > 0.9  # index and ring straight along the hand
        assert reach[[1, 3]].max() < 0.0  # middle and pinky curled back into the palm


def test_batches_and_bad_shapes():
    batch = torch.stack([landmarks("middle_finger", 0, False), landmarks("fist", 0, False)])
    scores = middle_finger_score(batch.unsqueeze(0))
    assert scores.shape == (1, 2)
    assert scores[0, 0] >= FIRES and scores[0, 1] <= SILENT
    with pytest.raises(ValueError, match="21, 3"):
        middle_finger_score(torch.zeros(20, 3))
