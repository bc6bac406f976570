"""Optional NudeNet body-part detector (AGPL-3.0): `pip install .[nudenet]`, never a default.

When the `nudenet` distribution is installed and the caller enables it, its 320n.onnx YOLOv8n
detector runs under onnxruntime next to the native backbones, and its per-class box scores become
the "nudenet" evidence source: the level-3 nudity labels listed in models/data/evidence_v7.json.
We only need "is there such a box in the frame, and how sure", so each class's score is the
maximum over all anchors; box geometry and NMS are not needed for frame-level labels.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from models.weight_sources import WeightSource

SOURCE_NAME = "nudenet"
NUDENET_WEIGHTS = WeightSource("nudenet", "320n.onnx", "AGPL-3.0")
BOX_COORDINATES = 4  # YOLOv8 rows: cx, cy, w, h, then one score per class
DEFAULT_INPUT_SIZE = 320


def nudenet_installed() -> bool:
    """True when the optional `nudenet` package can be imported."""
    return importlib.util.find_spec("nudenet") is not None


def class_scores_from_raw(raw: np.ndarray, num_classes: int) -> np.ndarray:
    """YOLOv8 output (B, 4 + classes, anchors) -> (B, classes): each class's best anchor score."""
    raw = np.asarray(raw, dtype=np.float32)
    if raw.ndim != 3 or raw.shape[1] != BOX_COORDINATES + num_classes:
        raise ValueError(f"expected raw detector output (B, {BOX_COORDINATES + num_classes}, A), "
                         f"got {raw.shape}")
    return np.clip(raw[:, BOX_COORDINATES:, :].max(axis=2), 0.0, 1.0)


def frames_to_detector_input(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W, 3) RGB -> float32 (N, 3, size, size) RGB in 0..1, as NudeNet feeds it."""
    pixels = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    if pixels.shape[-2:] != (size, size):
        pixels = F.interpolate(pixels, size=(size, size), mode="bilinear", align_corners=False)
    return pixels.contiguous().numpy()


class NudeNetDetector:
    """An ExtraDetector: frames -> {"nudenet": (N, 18) class scores in 0..1}."""

    def __init__(self, num_classes: int, session: Any | None = None,
                 threads: int | None = None) -> None:
        self.num_classes = num_classes
        self.session = session if session is not None else self._open_session(threads)
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        shape = list(model_input.shape)
        self.input_size = shape[-1] if isinstance(shape[-1], int) else DEFAULT_INPUT_SIZE
        self.fixed_batch = isinstance(shape[0], int)

    @staticmethod
    def _open_session(threads: int | None):
        import onnxruntime  # only with the extra

        path: Path = NUDENET_WEIGHTS.locate()
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        wanted = ("CUDAExecutionProvider", "CPUExecutionProvider")
        providers = [p for p in wanted if p in onnxruntime.get_available_providers()]
        return onnxruntime.InferenceSession(str(path), sess_options=options, providers=providers)

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        inputs = frames_to_detector_input(frames, self.input_size)
        chunks = [inputs[i : i + 1] for i in range(len(inputs))] if self.fixed_batch else [inputs]
        raw = [self.session.run(None, {self.input_name: chunk})[0] for chunk in chunks]
        return {SOURCE_NAME: class_scores_from_raw(np.concatenate(raw), self.num_classes)}
