"""HandGestureDetector: frames -> hands (MediaPipe's palm + landmark pipeline) -> gesture scores.

An ExtraDetector for models.hierarchical: uint8 RGB frames (N, H, W, 3) in, the
"mediapipe_hands" source out, one row per frame with the scores named by OUTPUT_NAMES. The
steps are MediaPipe's: letterbox to 192, palm detector, anchor decode, sigmoid + threshold,
weighted NMS, palm -> rotated hand square, crop to 224, landmark model, presence threshold.
The landmark model runs once per batch on the crops of every frame where a palm was found, so
frames without hands cost the palm detector only. It knows nothing of the taxonomy: the
evidence file maps these scores to labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.backbones.inference import onednn_available
from models.hands.crop import crop_squares, crop_to_image, letterbox_squares
from models.hands.gesture import NUM_LANDMARKS, middle_finger_score
from models.hands.op_graph import OpGraph, build_op_graph
from models.hands.palm import (
    PALM_INPUT_SIZE,
    decode_boxes,
    generate_anchors,
    palm_to_hand_rect,
    scores_from_logits,
    weighted_nms,
)
from models.hands.weights import HAND_LANDMARK_WEIGHTS, PALM_DETECTOR_WEIGHTS
from models.weight_cache import load_state

SOURCE_NAME = "mediapipe_hands"
OUTPUT_NAMES = ("middle_finger", "hand_present")  # the columns of the source's (N, 2) scores
LANDMARK_INPUT_SIZE = 224
PALM_OUTPUTS = ("Identity", "Identity_1")  # regressors (1, 2016, 18), score logits (1, 2016, 1)
LANDMARK_OUTPUTS = ("Identity", "Identity_1", "Identity_2", "Identity_3")  # see HandLandmarks
# MediaPipe Hands uses 0.5 for both. Our frames are 224x224 and scaled with antialiasing, where
# palm scores run lower: a bare hand in OpenCV's right04.jpg scores 0.71 at full size but 0.42
# at 224, while its landmark presence stays 0.97. So palms are taken from 0.3 and the landmark
# model's presence does the rejecting (0.95-0.99 on the real hands; at most 0.14 on the 29
# false palms that 0.3 lets through on OpenCV's 91 sample photographs at 224).
PALM_SCORE_THRESHOLD = 0.3
PRESENCE_THRESHOLD = 0.5
MAX_HANDS_PER_FRAME = 4


@dataclass(frozen=True)
class Hand:
    """One hand the landmark model confirmed (or rejected: see `presence`) in one frame."""

    frame: int
    palm_score: float
    presence: float  # the landmark model's hand-presence probability
    handedness: float  # its handedness output (label file: Left, Right; trained on selfies)
    square: torch.Tensor  # (4,) x_centre, y_centre, size, rotation of the crop, image pixels
    landmarks: torch.Tensor  # (21, 3) image pixels (z at the same scale)
    crop_landmarks: torch.Tensor  # (21, 3) in the 224 crop's pixels: what the rule reads
    middle_finger: float  # the gesture rule's score, 0..1, before weighing by presence


class HandGestureDetector:
    """An ExtraDetector: frames -> {"mediapipe_hands": (N, 2) [middle_finger, hand_present]}.

    middle_finger is the best hand's presence x rule score among hands over the presence
    threshold; hand_present the best hand-presence probability of any palm found (0 if none).
    """

    def __init__(self, palm: OpGraph, landmarker: OpGraph, *,
                 device: torch.device | str = "cpu",
                 palm_threshold: float = PALM_SCORE_THRESHOLD,
                 presence_threshold: float = PRESENCE_THRESHOLD,
                 max_hands: int = MAX_HANDS_PER_FRAME) -> None:
        if palm.output_names != PALM_OUTPUTS or landmarker.output_names != LANDMARK_OUTPUTS:
            raise ValueError(f"unexpected network outputs {palm.output_names}, "
                             f"{landmarker.output_names}")
        if palm.input_size != (PALM_INPUT_SIZE,) * 2:
            raise ValueError(f"palm detector input {palm.input_size}, expected 192x192")
        self.device = torch.device(device)
        fuse = onednn_available(self.device)
        self.palm = palm.to(self.device, memory_format=torch.channels_last).use_onednn(fuse)
        self.landmarker = landmarker.to(self.device, memory_format=torch.channels_last)
        self.landmarker.use_onednn(fuse)
        self.anchors = generate_anchors().to(self.device)
        self.palm_threshold = palm_threshold
        self.presence_threshold = presence_threshold
        self.max_hands = max_hands

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        scores = np.zeros((len(frames), len(OUTPUT_NAMES)), dtype=np.float32)
        for hand in self.detect_hands(frames):
            row = scores[hand.frame]
            row[1] = max(row[1], hand.presence)
            if hand.presence >= self.presence_threshold:
                row[0] = max(row[0], hand.presence * hand.middle_finger)
        return {SOURCE_NAME: scores}

    @torch.inference_mode()
    def detect_palms(self, images: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """images (N, 3, H, W) in 0..1 -> per frame (D, 18) palms in image pixels and (D,)
        scores. Columns: x_centre, y_centre, width, height, then 7 (x, y) keypoints."""
        count, _, height, width = images.shape
        squares = letterbox_squares(height, width, count).to(images.device)
        letterboxed = crop_squares(images, squares, PALM_INPUT_SIZE, padding_mode="zeros")
        regressors, logits = self.palm(letterboxed)
        boxes = decode_boxes(regressors.float(), self.anchors)
        probabilities = scores_from_logits(logits.float()[..., 0])
        palms = []
        for frame in range(count):
            keep = probabilities[frame] >= self.palm_threshold
            found, found_scores = weighted_nms(boxes[frame][keep], probabilities[frame][keep],
                                               max_detections=self.max_hands)
            points = found.reshape(1, -1, 2) * PALM_INPUT_SIZE  # all (x, y) pairs of all palms
            in_image = crop_to_image(points, squares[frame:frame + 1], PALM_INPUT_SIZE)
            in_image = in_image.reshape(found.shape)
            in_image[:, 2:4] = found[:, 2:4] * squares[frame, 2]  # width, height: scale only
            palms.append((in_image, found_scores))
        return palms

    @torch.inference_mode()
    def detect_hands(self, frames: np.ndarray) -> list[Hand]:
        """uint8 (N, H, W, 3) RGB frames -> every palm's hand, checked by the landmark model."""
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 (N, H, W, 3), got {frames.dtype} "
                             f"{frames.shape}")
        if len(frames) == 0:
            return []
        pixels = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        images = pixels.permute(0, 3, 1, 2).float().div_(255.0)  # channels_last view
        palms = self.detect_palms(images)
        frame_ids, palm_scores, squares = [], [], []
        for frame, (found, found_scores) in enumerate(palms):
            for detection, score in zip(found, found_scores):
                rect = palm_to_hand_rect(detection.cpu())
                squares.append([rect.x_centre, rect.y_centre, rect.size, rect.rotation])
                frame_ids.append(frame)
                palm_scores.append(float(score))
        if not squares:
            return []
        squares_t = torch.tensor(squares, dtype=torch.float32, device=self.device)
        crops = crop_squares(images[torch.tensor(frame_ids, device=self.device)], squares_t,
                             LANDMARK_INPUT_SIZE, padding_mode="border")
        raw_landmarks, presence, handedness, _world = self.landmarker(crops)
        crop_landmarks = raw_landmarks.float().reshape(-1, NUM_LANDMARKS, 3)
        landmarks = crop_to_image(crop_landmarks, squares_t, LANDMARK_INPUT_SIZE)
        gesture = middle_finger_score(crop_landmarks)
        return [Hand(frame_ids[i], palm_scores[i], float(presence[i, 0]),
                     float(handedness[i, 0]), squares_t[i].cpu(), landmarks[i].cpu(),
                     crop_landmarks[i].cpu(), float(gesture[i]))
                for i in range(len(frame_ids))]


def load_hand_gesture_detector(cache_dir: Path, threads: int | None = None, *,
                               device: str | torch.device = "cpu") -> HandGestureDetector:
    """Both networks from the safetensors cache in `cache_dir` (converted from the installed
    @mediapipe/hands tarball on first use), as a HandGestureDetector.

    threads: torch intra-op threads for this process; None leaves torch's default.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    palm_state, _ = load_state(PALM_DETECTOR_WEIGHTS, Path(cache_dir))
    landmark_state, _ = load_state(HAND_LANDMARK_WEIGHTS, Path(cache_dir))
    return HandGestureDetector(build_op_graph(palm_state), build_op_graph(landmark_state),
                               device=device)
