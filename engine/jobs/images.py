"""What DetectModerationLabels and media analysis jobs share: reading an image object within
its limit, and turning one image's raw scores into an ImageModeration, so an image analysed in
bulk is answered exactly as the same image sent alone. Knows nothing about HTTP or Ray.
"""

from __future__ import annotations

import numpy as np

from engine.errors import ImageTooLargeException
from engine.jobs.types import ImageModeration
from engine.results import (
    FrameScores,
    build_detections,
    reported_content_types,
    sort_by_confidence,
)
from engine.storage.access import readable_object
from engine.storage.base import ObjectRef, ObjectStore


def read_image_object(objects: ObjectStore, account: str, image: ObjectRef, limit: int) -> bytes:
    """An image object's bytes, if `account` may read it (engine/storage/access.py);
    ImageTooLargeException over `limit`, InvalidS3ObjectException when it cannot be read."""
    size = readable_object(objects, account, image).size_bytes
    if size > limit:
        raise ImageTooLargeException(
            f"The object {image.describe()} is {size} bytes; the maximum for an image is "
            f"{limit} bytes"
        )
    # Read one byte past the limit: an object that grew since `stat` is still refused as
    # too large, never read in full.
    data = objects.get_bytes(image, max_bytes=limit + 1)
    if len(data) > limit:
        raise ImageTooLargeException(
            f"The image object {image.describe()} is larger than the maximum of {limit} bytes"
        )
    return data


def image_moderation(scores: np.ndarray, taxonomy, content_types: tuple[str, ...],
                     min_confidence: float, model_version: str,
                     project_version: str | None = None) -> ImageModeration:
    """One image's scores (labels in the order of `taxonomy`, the runner's Taxonomy, then `content_types`) labelled by the
    video rules (threshold, every ancestor as its own entry), most confident first."""
    labels = len(taxonomy)
    detections = build_detections(
        taxonomy, [FrameScores(timestamp_ms=0, confidences=scores[:labels])], min_confidence)
    return ImageModeration(sort_by_confidence(detections), model_version,
                           reported_content_types(content_types, scores[labels:]),
                           project_version)
