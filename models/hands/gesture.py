"""The Middle Finger gesture as a geometric rule on MediaPipe's 21 hand landmarks.

No network is trained for gestures here, so the rule is written in the hand's own frame: the
axis from the wrist to the middle finger's knuckle (MCP) is "up the hand". A finger's reach is
how far its tip gets along that axis beyond its own knuckle, as a fraction of the finger's
length: about 1 for a straight finger pointing along the hand, near 0 when it is bent at the
knuckle, negative when it curls back into the palm. Distances and projections do not change
when the hand turns in the image or is mirrored, so the rule holds at any rotation and for left
and right hands alike. The thumb is ignored: people show the gesture with the thumb tucked or
out. Landmarks are (x, y, z) in one isotropic unit (crop pixels); this module knows nothing of
crops or networks.
"""

from __future__ import annotations

import torch

NUM_LANDMARKS = 21
WRIST = 0
# (MCP, PIP, DIP, TIP) landmark indices of the four fingers; the thumb is 1-4.
INDEX, MIDDLE, RING, PINKY = (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20)
FINGERS = (INDEX, MIDDLE, RING, PINKY)
# A reach at or above EXTENDED_REACH counts as fully extended, at or below CURLED_REACH as fully
# curled; in between the finger is partly either, so the score fades instead of flipping.
EXTENDED_REACH = 0.7
CURLED_REACH = 0.3


def finger_reach(landmarks: torch.Tensor) -> torch.Tensor:
    """(..., 21, 3) landmarks -> (..., 4) reach of index, middle, ring and pinky (see module)."""
    if landmarks.shape[-2:] != (NUM_LANDMARKS, 3):
        raise ValueError(f"landmarks must have shape (..., {NUM_LANDMARKS}, 3), "
                         f"got {tuple(landmarks.shape)}")
    axis = landmarks[..., MIDDLE[0], :] - landmarks[..., WRIST, :]
    axis = axis / axis.norm(dim=-1, keepdim=True).clamp(min=1e-6)
    reaches = []
    for mcp, pip, dip, tip in FINGERS:
        joints = landmarks[..., [mcp, pip, dip, tip], :]
        length = (joints[..., 1:, :] - joints[..., :-1, :]).norm(dim=-1).sum(-1)
        along = ((landmarks[..., tip, :] - landmarks[..., mcp, :]) * axis).sum(-1)
        reaches.append(along / length.clamp(min=1e-6))
    return torch.stack(reaches, dim=-1)


def finger_extension(reach: torch.Tensor) -> torch.Tensor:
    """Reach -> 0 (curled) .. 1 (extended), a smoothstep between the two thresholds."""
    t = ((reach - CURLED_REACH) / (EXTENDED_REACH - CURLED_REACH)).clamp(0.0, 1.0)
    return t * t * (3 - 2 * t)


def middle_finger_score(landmarks: torch.Tensor) -> torch.Tensor:
    """(..., 21, 3) -> (...,) in 0..1: how clearly the middle finger alone is extended.

    The weakest of the four conditions (middle extended; index, ring, pinky curled) decides, so
    a peace sign or an open hand scores 0 however straight the middle finger is.
    """
    extension = finger_extension(finger_reach(landmarks))
    index, middle, ring, pinky = extension.unbind(-1)
    return torch.minimum(middle, 1 - torch.maximum(torch.maximum(index, ring), pinky))
