"""The default classifier: all backbones in one forward pass, then the hierarchical head.

Implements models.base.FrameClassifier. It receives uint8 RGB frames already at 224x224 (the
pipeline scales while decoding) and knows nothing of video, Ray or the wire.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from models.adapter import probability_features
from models.backbones.layers import frames_to_pixels
from models.base import FrameOutputs, ModelInfo, check_confidences
from models.evidence import EvidenceHead

# An extra detector maps a uint8 frame batch to {source name: (N, C) scores in 0..1}.
ExtraDetector = Callable[[np.ndarray], dict[str, np.ndarray]]


class BackboneEnsemble(nn.Module):
    """Runs every backbone on one shared pixel tensor; returns {source: probabilities}."""

    def __init__(self, backbones: dict[str, nn.Module]) -> None:
        super().__init__()
        self.backbones = nn.ModuleDict(backbones)

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        pixels = frames_to_pixels(frames)
        return {name: backbone.forward_pixels(pixels) for name, backbone in self.backbones.items()}


class HierarchicalClassifier:
    """Backbones -> per-source probabilities -> evidence per label -> taxonomy confidences.

    Its `taxonomy` is the part of the head's that the enabled sources can see (each covered
    label with its ancestors): a label no loaded network gives evidence for is not in it, so it
    is never reported, at any MinConfidence. `info.content_types` names the Rekognition content
    types (Illustrated...) it scores beside the labels.
    """

    def __init__(self, ensemble: BackboneEnsemble, head: EvidenceHead, info: ModelInfo, *,
                 device: torch.device, precision: str,
                 extra_detectors: tuple[ExtraDetector, ...] = ()) -> None:
        self.ensemble = ensemble
        self.head = head
        self._columns = head.covered_labels()
        self.taxonomy = head.taxonomy.restricted_to(self._columns)
        self.adaptable_taxonomy = head.taxonomy
        """The whole taxonomy: an adapter (models/adapter.py) may add labels no source covers."""
        self.info = replace(info, content_types=head.content_type_names)
        self.device = device
        self.precision = precision
        self.extra_detectors = extra_detectors

    def _check_frames(self, frames: np.ndarray) -> None:
        height, width = self.info.input_size
        if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
            raise ValueError(f"frames must be a uint8 numpy array, got {type(frames).__name__} "
                             f"{getattr(frames, 'dtype', '')}")
        if frames.ndim != 4 or frames.shape[1:] != (height, width, 3):
            raise ValueError(f"frames must have shape (N, {height}, {width}, 3), "
                             f"got {frames.shape}")

    def source_probabilities(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Every enabled source's raw outputs (0..1) for a batch: what the head sees."""
        self._check_frames(frames)
        batch = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device, non_blocking=True)
        # No autocast: the backbones were cast to their precision once, at load.
        with torch.inference_mode():
            outputs = self.ensemble(batch)
        probabilities = {name: out.float().cpu().numpy() for name, out in outputs.items()}
        for detector in self.extra_detectors:
            probabilities.update(detector(frames))
        return probabilities

    def classify(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (N, 224, 224, 3) RGB -> float32 (N, len(taxonomy)) confidences 0..100."""
        return self.classify_frames(frames).labels

    def classify_frames(self, frames: np.ndarray) -> FrameOutputs:
        """Label confidences and content-type confidences of a batch, from one forward pass."""
        return self.classify_with_features(frames)[0]

    def classify_with_features(self, frames: np.ndarray) -> tuple[FrameOutputs, np.ndarray]:
        """classify_frames plus each frame's features for adapters: every source's outputs,
        log-scaled (models/adapter.py: probability_features), from the same forward pass."""
        self._check_frames(frames)
        if len(frames) == 0:
            empty = FrameOutputs(np.zeros((0, len(self.taxonomy)), dtype=np.float32),
                                 np.zeros((0, len(self.info.content_types)), np.float32))
            return empty, np.zeros((0, 0), np.float32)
        probabilities = self.source_probabilities(frames)
        scores = self.head(probabilities, len(frames))[:, self._columns]
        outputs = FrameOutputs(check_confidences(self.taxonomy, scores, len(frames)),
                               self.head.content_types(probabilities, len(frames)))
        return outputs, probability_features(probabilities)
