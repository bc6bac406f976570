"""Palm post-processing without the network: anchors, decoding, weighted NMS, hand squares and
the crop <-> image coordinate maps."""

from __future__ import annotations

import math

import pytest
import torch

from models.hands.crop import crop_squares, crop_to_image, letterbox_squares
from models.hands.palm import (
    decode_boxes,
    generate_anchors,
    iou,
    palm_to_hand_rect,
    scores_from_logits,
    weighted_nms,
)


def test_anchor_count_and_known_values():
    anchors = generate_anchors()
    assert anchors.shape == (2016, 4)
    # Stride 8: a 24x24 map, two anchors per cell, row-major, x fastest.
    assert anchors[0].tolist() == pytest.approx([0.5 / 24, 0.5 / 24, 1.0, 1.0])
    assert anchors[1].tolist() == pytest.approx([0.5 / 24, 0.5 / 24, 1.0, 1.0])
    assert anchors[2].tolist() == pytest.approx([1.5 / 24, 0.5 / 24, 1.0, 1.0])
    assert anchors[48].tolist() == pytest.approx([0.5 / 24, 1.5 / 24, 1.0, 1.0])
    assert anchors[1151].tolist() == pytest.approx([23.5 / 24, 23.5 / 24, 1.0, 1.0])
    # Three stride-16 layers share one 12x12 map: six anchors per cell.
    assert anchors[1152:1158].flatten().tolist() == pytest.approx([0.5 / 12, 0.5 / 12, 1, 1] * 6)
    assert anchors[1158].tolist() == pytest.approx([1.5 / 12, 0.5 / 12, 1.0, 1.0])
    assert anchors[2015].tolist() == pytest.approx([11.5 / 12, 11.5 / 12, 1.0, 1.0])
    assert bool((anchors[:, 2:] == 1).all())


def test_decode_offsets_are_input_pixels_from_the_anchor_centre():
    anchors = torch.tensor([[0.25, 0.5, 1.0, 1.0]])
    raw = torch.zeros(1, 18)
    raw[0, :4] = torch.tensor([19.2, -9.6, 48.0, 96.0])
    raw[0, 4:6] = torch.tensor([-19.2, 0.0])  # keypoint 0
    decoded = decode_boxes(raw, anchors)
    assert decoded[0, :4].tolist() == pytest.approx([0.35, 0.45, 0.25, 0.5])
    assert decoded[0, 4:6].tolist() == pytest.approx([0.15, 0.5])
    assert decoded[0, 6:8].tolist() == pytest.approx([0.25, 0.5])  # zero offset: the centre


def test_scores_are_clipped_sigmoids():
    scores = scores_from_logits(torch.tensor([0.0, 1000.0, -1000.0]))
    assert scores.tolist() == pytest.approx([0.5, 1.0, 0.0])
    assert bool(torch.isfinite(scores).all())


def detection(x: float, y: float, size: float, keypoint_x: float = 0.0) -> list[float]:
    return [x, y, size, size] + [keypoint_x, 0.0] * 7


def test_iou_of_corner_boxes():
    box = torch.tensor([0.0, 0.0, 2.0, 2.0])
    others = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.0], [5.0, 5.0, 6.0, 6.0],
                           [1.0, 1.0, 1.0, 1.0]])
    assert iou(box, others).tolist() == pytest.approx([1.0, 1 / 3, 0.0, 0.0])


def test_weighted_nms_averages_overlapping_boxes_by_score():
    detections = torch.tensor([detection(0.50, 0.5, 0.2, keypoint_x=1.0),
                               detection(0.52, 0.5, 0.2, keypoint_x=3.0),  # overlaps the first
                               detection(0.90, 0.9, 0.1)])  # alone
    scores = torch.tensor([0.6, 0.9, 0.7])
    kept, kept_scores = weighted_nms(detections, scores, iou_threshold=0.3)
    assert kept_scores.tolist() == pytest.approx([0.9, 0.7])
    assert kept[0, 0].item() == pytest.approx((0.50 * 0.6 + 0.52 * 0.9) / 1.5)
    assert kept[0, 4].item() == pytest.approx((1.0 * 0.6 + 3.0 * 0.9) / 1.5)
    assert kept[1].tolist() == pytest.approx(detection(0.90, 0.9, 0.1))


def test_weighted_nms_keeps_boxes_below_the_overlap_threshold_apart():
    # IoU of these two is 1/3: above 0.3 they merge, with 0.4 they stay two detections.
    detections = torch.tensor([detection(0.0, 0.0, 2.0), detection(1.0, 0.0, 2.0)])
    scores = torch.tensor([0.8, 0.7])
    assert len(weighted_nms(detections, scores, iou_threshold=0.3)[0]) == 1
    assert len(weighted_nms(detections, scores, iou_threshold=0.4)[0]) == 2
    assert len(weighted_nms(detections, scores, 0.4, max_detections=1)[0]) == 1
    empty, empty_scores = weighted_nms(torch.zeros(0, 18), torch.zeros(0))
    assert empty.shape == (0, 18) and empty_scores.shape == (0,)


@pytest.mark.parametrize("direction, expected_rotation", [
    ((0.0, -1.0), 0.0),  # fingers up: no rotation
    ((1.0, 0.0), math.pi / 2),  # fingers to the right
    ((0.0, 1.0), math.pi),  # fingers down (either sign of pi)
    ((-1.0, 0.0), -math.pi / 2),
])
def test_hand_square_turns_the_wrist_to_knuckle_line_up(direction, expected_rotation):
    wrist = torch.tensor([100.0, 100.0])
    knuckle = wrist + 20 * torch.tensor(direction)
    palm = torch.zeros(18)
    palm[:4] = torch.tensor([100.0, 100.0, 30.0, 40.0])
    palm[4:6], palm[8:10] = wrist, knuckle
    rect = palm_to_hand_rect(palm)
    assert abs(math.remainder(rect.rotation - expected_rotation, 2 * math.pi)) < 1e-6
    assert rect.size == pytest.approx(40.0 * 2.6)
    # The centre moves half the box height (20 px) towards the fingers.
    moved = torch.tensor([rect.x_centre, rect.y_centre]) - wrist
    assert moved.tolist() == pytest.approx((20 * torch.tensor(direction)).tolist(), abs=1e-4)


def test_crop_and_its_inverse_map_agree_on_a_rotated_square():
    image = torch.zeros(1, 3, 120, 160)
    image[0, :, 30, 100] = 1.0  # one bright pixel at x=100, y=30
    square = torch.tensor([[90.0, 40.0, 64.0, 0.7]])
    crop = crop_squares(image, square, 64)
    assert crop.is_contiguous(memory_format=torch.channels_last)
    flat = int(crop[0, 0].argmax())
    peak = torch.tensor([[[flat % 64 + 0.5, flat // 64 + 0.5]]])  # pixel centre, crop pixels
    assert crop_to_image(peak, square, 64)[0, 0].tolist() == pytest.approx([100.5, 30.5],
                                                                           abs=0.75)


def test_letterbox_covers_the_frame_on_its_long_side():
    squares = letterbox_squares(100, 200, 2)
    assert squares.tolist() == [[100.0, 50.0, 200.0, 0.0]] * 2
    image = torch.ones(2, 3, 100, 200)
    boxed = crop_squares(image, squares, 192)
    assert boxed[0, 0, 96, :].min().item() == pytest.approx(1.0)  # image rows
    assert boxed[0, 0, :40, 96].max().item() == 0.0  # padding above
    assert boxed[0, 0, -40:, 96].max().item() == 0.0  # and below
