"""Synthetic hand landmarks from joint angles, for testing gesture rules without a network.

A hand is built in its own frame (palm length 1: x across the palm, thumb side negative; y from
the wrist up the hand; z towards the camera negative, the side the fingers bend to), from
finger flexion angles at the three joints and a splay angle, then turned, mirrored (left hand),
scaled and placed in crop pixels. Landmark order is MediaPipe's: wrist, thumb CMC-MCP-IP-TIP,
then MCP-PIP-DIP-TIP of the index, middle, ring and pinky fingers. Proportions are rough
adult-hand averages; the rule must not depend on them closely.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# Knuckle (MCP) positions and phalanx lengths, as fractions of the wrist -> middle MCP length.
KNUCKLES = {"index": (-0.28, 0.95), "middle": (0.0, 1.0), "ring": (0.25, 0.92),
            "pinky": (0.46, 0.82)}
PHALANGES = {"index": (0.42, 0.25, 0.20), "middle": (0.46, 0.29, 0.21),
             "ring": (0.43, 0.28, 0.20), "pinky": (0.34, 0.20, 0.18)}
THUMB_BASE = (-0.22, 0.22)
THUMB_BONES = (0.33, 0.30, 0.24)  # CMC -> MCP -> IP -> TIP
FINGER_ORDER = ("index", "middle", "ring", "pinky")

EXTENDED = (5.0, 5.0, 3.0)  # flexion (MCP, PIP, DIP) in degrees
CURLED = (85.0, 100.0, 65.0)


@dataclass(frozen=True)
class HandPose:
    """Flexions (MCP, PIP, DIP) in degrees per finger, splay in degrees (positive: towards the
    pinky side), and the thumb's direction in the palm plane and its bend towards the palm."""

    fingers: dict[str, tuple[float, float, float]]
    splay: dict[str, float]
    thumb_angle: float  # degrees from the hand's up axis, towards the thumb side
    thumb_flexion: float  # degrees out of the palm plane, per thumb joint


def _chain(base: tuple[float, float, float], bones, flexions, splay_deg: float) -> list:
    """Joint positions of one finger: each bone turns by its joint's flexion towards -z."""
    points, position, bend = [], torch.tensor(base, dtype=torch.float64), 0.0
    splay = math.radians(splay_deg)
    for length, flexion in zip(bones, flexions):
        bend += math.radians(flexion)
        direction = torch.tensor([math.sin(splay) * math.cos(bend),
                                  math.cos(splay) * math.cos(bend), -math.sin(bend)],
                                 dtype=torch.float64)
        position = position + length * direction
        points.append(position)
    return points


def hand_in_own_frame(pose: HandPose) -> torch.Tensor:
    """(21, 3) landmarks in the hand's frame, palm length 1."""
    points = [torch.zeros(3, dtype=torch.float64), torch.tensor([*THUMB_BASE, 0.0],
                                                                dtype=torch.float64)]
    # The thumb's splay is measured from +y towards -x (the thumb side), hence the sign.
    points += _chain((*THUMB_BASE, 0.0), THUMB_BONES, (pose.thumb_flexion,) * 3,
                     -pose.thumb_angle)
    for name in FINGER_ORDER:
        base = (*KNUCKLES[name], 0.0)
        points.append(torch.tensor(base, dtype=torch.float64))
        points += _chain(base, PHALANGES[name], pose.fingers[name], pose.splay.get(name, 0.0))
    return torch.stack(points)


def place_in_crop(hand: torch.Tensor, rotation_deg: float, left: bool, *,
                  palm_pixels: float = 70.0, centre: tuple[float, float] = (112.0, 140.0),
                  tilt_deg: float = 0.0) -> torch.Tensor:
    """Hand-frame landmarks -> crop pixels (y down): optionally mirrored (a left hand), tilted
    out of the image plane about the across axis, turned in the image plane by rotation_deg
    (0: fingers up), scaled and moved to `centre`."""
    points = hand.clone()
    if left:
        points[:, 0] = -points[:, 0]
    tilt = math.radians(tilt_deg)
    y, z = points[:, 1].clone(), points[:, 2].clone()
    points[:, 1], points[:, 2] = y * math.cos(tilt) - z * math.sin(tilt), \
        y * math.sin(tilt) + z * math.cos(tilt)
    points[:, 1] = -points[:, 1]  # image y grows downwards
    angle = math.radians(rotation_deg)
    x, y = points[:, 0].clone(), points[:, 1].clone()
    points[:, 0] = x * math.cos(angle) - y * math.sin(angle)
    points[:, 1] = x * math.sin(angle) + y * math.cos(angle)
    points = points * palm_pixels
    points[:, 0] += centre[0]
    points[:, 1] += centre[1]
    return points.float()


def _pose(extended: set[str], thumb: str, splay: dict[str, float] | None = None) -> HandPose:
    fingers = {name: EXTENDED if name in extended else CURLED for name in FINGER_ORDER}
    thumb_angle, thumb_flexion = {"out": (55.0, 5.0), "tucked": (80.0, 35.0),
                                  "up": (25.0, 0.0)}[thumb]
    return HandPose(fingers, splay or {}, thumb_angle, thumb_flexion)


POSES = {
    "middle_finger": _pose({"middle"}, "tucked"),
    "fist": _pose(set(), "tucked"),
    "open_palm": _pose(set(FINGER_ORDER), "out",
                       {"index": -12.0, "middle": -2.0, "ring": 8.0, "pinky": 18.0}),
    "pointing_index": _pose({"index"}, "tucked"),
    "peace_sign": _pose({"index", "middle"}, "tucked", {"index": -12.0, "middle": 8.0}),
    "thumbs_up": _pose(set(), "up"),
}
