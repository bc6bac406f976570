"""MediaPipe palm detection and hand landmarks as native torch, and gesture rules on top.

detector.HandGestureDetector is the entry point (an ExtraDetector, loaded by
load_hand_gesture_detector); the other modules are its parts: tflite_reader and op_graph turn
the shipped TFLite graphs into torch modules, weights says where they come from, palm and crop
hold MediaPipe's geometry, gesture the rules on the 21 landmarks.
"""

from models.hands.detector import (
    OUTPUT_NAMES,
    SOURCE_NAME,
    Hand,
    HandGestureDetector,
    load_hand_gesture_detector,
)

__all__ = ["OUTPUT_NAMES", "SOURCE_NAME", "Hand", "HandGestureDetector",
           "load_hand_gesture_detector"]
