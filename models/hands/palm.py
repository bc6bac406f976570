"""Palm detection post-processing: SSD anchors, box decoding, weighted NMS, palm -> hand rect.

These follow MediaPipe's palm detection graph (the full model's options): anchors from the SSD
anchor options below, raw regressors decoded against them, sigmoid scores, a score threshold,
weighted non-maximum suppression (overlapping boxes are averaged by score instead of dropped,
which steadies the box), then the hand rectangle the landmark model is fed: rotated so that the
wrist -> middle-finger-knuckle line points up, squared on its long side, enlarged and shifted
towards the fingers. Everything here is plain tensor maths on one frame's detections or on
anchors; it knows nothing of the networks' weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# SSD anchor options of the full palm model (192x192 input).
PALM_INPUT_SIZE = 192
ANCHOR_STRIDES = (8, 16, 16, 16)
ANCHOR_MIN_SCALE = 0.1484375
ANCHOR_MAX_SCALE = 0.75
ANCHOR_OFFSET = 0.5
ANCHORS_PER_LAYER = 2  # aspect ratio 1.0, plus the interpolated scale between layers
NUM_KEYPOINTS = 7
WRIST_KEYPOINT, MIDDLE_KNUCKLE_KEYPOINT = 0, 2
SCORE_CLIP = 100.0  # raw scores are clipped to +-100 before the sigmoid
MIN_SUPPRESSION_IOU = 0.3
# Palm box -> hand rectangle: square on the long side, x2.6, centre moved half a box up-hand.
HAND_RECT_SCALE = 2.6
HAND_RECT_SHIFT_Y = -0.5
HAND_RECT_TARGET_ANGLE = math.pi / 2


def anchor_scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    if count == 1:
        return (min_scale + max_scale) / 2
    return min_scale + (max_scale - min_scale) * index / (count - 1)


def generate_anchors(input_size: int = PALM_INPUT_SIZE,
                     strides: tuple[int, ...] = ANCHOR_STRIDES,
                     offset: float = ANCHOR_OFFSET) -> torch.Tensor:
    """(A, 4) anchors (x_centre, y_centre, width, height), normalised to the input.

    Consecutive layers with the same stride share one feature map, and each layer adds two
    anchors per cell. With a fixed anchor size every width and height is 1, so the scales
    (ANCHOR_MIN/MAX_SCALE) only matter for variable-size anchors and are not used here.
    For the palm model: 24x24 cells x 2 + 12x12 cells x 6 = 2016.
    """
    anchors = []
    layer = 0
    while layer < len(strides):
        same = layer
        while same < len(strides) and strides[same] == strides[layer]:
            same += 1
        per_cell = ANCHORS_PER_LAYER * (same - layer)
        cells = math.ceil(input_size / strides[layer])
        ys, xs = torch.meshgrid(torch.arange(cells), torch.arange(cells), indexing="ij")
        centres = (torch.stack([xs, ys], dim=-1).reshape(-1, 1, 2).double() + offset) / cells
        centres = centres.expand(-1, per_cell, 2).reshape(-1, 2)
        anchors.append(torch.cat([centres, torch.ones_like(centres)], dim=1))
        layer = same
    return torch.cat(anchors).float()


def decode_boxes(raw: torch.Tensor, anchors: torch.Tensor,
                 input_size: int = PALM_INPUT_SIZE) -> torch.Tensor:
    """Raw regressors (..., A, 4 + 2K) -> (..., A, 4 + 2K) normalised to the input.

    Output columns: x_centre, y_centre, width, height, then K (x, y) keypoints. Offsets are in
    input pixels relative to the anchor's centre and scaled by its size.
    """
    scale = anchors[:, 2:4].repeat(1, raw.shape[-1] // 2)  # (A, 4 + 2K): w, h, w, h, ...
    decoded = raw / input_size * scale
    centres = anchors[:, 0:2]
    decoded[..., 0:2] = decoded[..., 0:2] + centres
    keypoints = decoded[..., 4:].unflatten(-1, (-1, 2)) + centres.unsqueeze(-2)
    decoded[..., 4:] = keypoints.flatten(-2)
    return decoded


def scores_from_logits(logits: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(logits.clamp(-SCORE_CLIP, SCORE_CLIP))


def box_corners(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4+) centre-size boxes -> (..., 4) x_min, y_min, x_max, y_max."""
    half = boxes[..., 2:4] / 2
    return torch.cat([boxes[..., 0:2] - half, boxes[..., 0:2] + half], dim=-1)


def iou(box: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """IoU of one corner box (4,) with each of (M, 4); 0 where the union is empty."""
    top_left = torch.maximum(box[:2], others[:, :2])
    bottom_right = torch.minimum(box[2:], others[:, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=1)
    area = (box[2:] - box[:2]).clamp(min=0).prod()
    areas = (others[:, 2:] - others[:, :2]).clamp(min=0).prod(dim=1)
    union = area + areas - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(union))


def weighted_nms(detections: torch.Tensor, scores: torch.Tensor,
                 iou_threshold: float = MIN_SUPPRESSION_IOU,
                 max_detections: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted non-maximum suppression over one frame's detections.

    detections: (M, 4 + 2K) centre-size boxes with keypoints; scores: (M,). Repeatedly takes
    the best remaining detection and every remaining one overlapping it by more than
    `iou_threshold` (itself included); the kept detection is their score-weighted mean (box and
    keypoints) with the best one's score. Returns (D, 4 + 2K) and (D,), best first.
    """
    order = torch.argsort(scores, descending=True)
    detections, scores = detections[order], scores[order]
    corners = box_corners(detections)
    remaining = torch.arange(len(scores))
    kept, kept_scores = [], []
    while remaining.numel() and (max_detections is None or len(kept) < max_detections):
        best = remaining[0]
        overlap = iou(corners[best], corners[remaining]) > iou_threshold
        overlap[0] = True
        group = remaining[overlap]
        weights = scores[group].unsqueeze(1)
        kept.append((detections[group] * weights).sum(0) / weights.sum())
        kept_scores.append(scores[best])
        remaining = remaining[~overlap]
    if not kept:
        return detections.new_zeros((0, detections.shape[1])), scores.new_zeros(0)
    return torch.stack(kept), torch.stack(kept_scores)


@dataclass(frozen=True)
class HandRect:
    """A rotated square in image pixels: where the landmark model looks for one hand."""

    x_centre: float
    y_centre: float
    size: float  # side length in pixels
    rotation: float  # radians; the crop's "up" is the image direction R(rotation) @ (0, -1)


def normalise_radians(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def palm_to_hand_rect(detection: torch.Tensor) -> HandRect:
    """One palm detection in image pixels (box + keypoints) -> the hand's crop rectangle.

    The rotation turns the wrist -> middle-knuckle vector to point up; the box is shifted
    towards the fingers by half its height (in the rotated frame), squared on its long side and
    scaled by 2.6 so that the whole hand, fingers spread, fits in the crop.
    """
    x_c, y_c, width, height = (float(v) for v in detection[:4])
    keypoints = detection[4:].reshape(-1, 2)
    wrist, knuckle = keypoints[WRIST_KEYPOINT], keypoints[MIDDLE_KNUCKLE_KEYPOINT]
    angle = math.atan2(-float(knuckle[1] - wrist[1]), float(knuckle[0] - wrist[0]))
    rotation = normalise_radians(HAND_RECT_TARGET_ANGLE - angle)
    cos, sin = math.cos(rotation), math.sin(rotation)
    shift_y = HAND_RECT_SHIFT_Y * height
    x_c, y_c = x_c - sin * shift_y, y_c + cos * shift_y
    return HandRect(x_c, y_c, max(width, height) * HAND_RECT_SCALE, rotation)
