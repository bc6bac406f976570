"""Training a Custom Moderation adapter: decode the annotated images exactly as DetectModerationLabels
does (engine/video/image.py), augment the training split (mirror images and centre crops),
embed everything through the pool's frozen model, then fit and calibrate the heads
(models/adapter.py). `train_adapter` is the plain function (test doubles call it with their own
embedder); `train_adapter_remote` is the Ray task the runner submits. Knows nothing of storage,
jobs or the wire: bytes and labels in, the adapter file's bytes and its evaluation out.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.cluster.types import AdapterLabelResult, AdapterTrainingRequest, AdapterTrainingResult
from engine.video.image import ImageLimits, decode_image, scale_to_frame
from models.adapter import AdapterError, fit_adapter

Embedder = Callable[[np.ndarray], np.ndarray]
EMBED_BATCH = 32
CROP_SHARE = 0.8
"""A centre crop keeps this share of each side: the augmentation that zooms in."""


class AdapterTrainingError(AdapterError):
    """The dataset cannot train an adapter (an image that does not decode); the message says
    which image and why, and becomes the version's StatusMessage."""


def augmented(rgb: np.ndarray) -> list[np.ndarray]:
    """A training image and its variants: the mirror image, and a centre crop of each."""
    height, width = rgb.shape[:2]
    top, left = int(height * (1 - CROP_SHARE) / 2), int(width * (1 - CROP_SHARE) / 2)
    crop = rgb[top : height - top, left : width - left]
    return [rgb, rgb[:, ::-1], crop, crop[:, ::-1]]


def train_adapter(request: AdapterTrainingRequest, embed: Embedder, input_size: tuple[int, int],
                  limits: ImageLimits, base_model: str) -> AdapterTrainingResult:
    names = [name for name, _ in request.labels]
    train_frames, train_targets, test_frames, test_targets, test_sources = [], [], [], [], []
    for example in request.examples:
        try:
            rgb = decode_image(example.image, limits)
        except ValueError as error:
            raise AdapterTrainingError(f"the image {example.source} cannot be used: {error}") from None
        target = [name in example.labels for name in names]
        if example.testing:
            test_frames.append(scale_to_frame(rgb, input_size))
            test_targets.append(target)
            test_sources.append(example.source)
        else:
            for variant in augmented(rgb):
                train_frames.append(scale_to_frame(variant, input_size))
                train_targets.append(target)
    fit = fit_adapter(request.labels, _embed_all(embed, train_frames), np.array(train_targets),
                      _embed_all(embed, test_frames), np.array(test_targets),
                      request.confidence_threshold, base_model)
    return AdapterTrainingResult(
        adapter_file=fit.adapter.to_bytes(),
        f1=fit.f1,
        labels=tuple(AdapterLabelResult(e.name, e.true_positives, e.false_positives,
                                        e.false_negatives, e.true_negatives, e.f1)
                     for e in fit.evaluations),
        training_images=sum(not example.testing for example in request.examples),
        training_embeddings=len(train_frames),
        testing_confidences=tuple((source, tuple(float(c) for c in row))
                                  for source, row in zip(test_sources, fit.test_confidences)),
    )


def _embed_all(embed: Embedder, frames: list[np.ndarray]) -> np.ndarray:
    parts = [np.asarray(embed(np.stack(frames[start : start + EMBED_BATCH])), np.float32)
             for start in range(0, len(frames), EMBED_BATCH)]
    return np.concatenate(parts, axis=0)


def train_adapter_remote(request: AdapterTrainingRequest, actor, input_size: tuple[int, int],
                         limits: ImageLimits, base_model: str) -> AdapterTrainingResult:
    """The Ray task: embeds through `actor` (an inference actor of the pool)."""
    import ray

    return train_adapter(request, lambda frames: ray.get(actor.embed.remote(frames)),
                         input_size, limits, base_model)
