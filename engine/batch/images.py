"""Images in bulk on Ray Data (the media analysis jobs of engine/jobs/media_analysis.py):
encoded images -> model frames -> scores, optionally through a Custom Moderation adapter.

The same stages as a video batch where they can be: the model stage is stages.BatchClassifier
(a pool of actors, one per GPU or `inference_actors` on CPU), the frames come from
engine/video/image.py exactly as DetectModerationLabels makes them. A bad image becomes an
"error" row with its message (and whether it was too large), never a failed dataset.
Knows nothing of jobs, storage or the wire: bytes in, per-image score rows out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from engine.batch.stages import BatchClassifier
from engine.cluster import actor_placement
from engine.config import EngineSettings
from engine.video.image import ImageLimits, ImageTooLargeError, image_frame


@dataclass(frozen=True)
class ImageScores:
    """One image's outcome: its scores (labels, then content types) or why it has none."""

    key: int
    """The caller's key of the image (a manifest line number)."""
    scores: np.ndarray | None
    error: str = ""
    too_large: bool = False


def image_limits(settings: EngineSettings) -> ImageLimits:
    return ImageLimits(settings.max_image_object_bytes, settings.max_image_side_px,
                       settings.max_image_pixels)


def decode_image_row(row: dict, input_size: tuple[int, int], limits: ImageLimits) -> dict:
    """One encoded image -> its model frame (or an error row with a blank frame)."""
    blank = np.zeros((*input_size, 3), dtype=np.uint8)
    try:
        frame = image_frame(row["image"], input_size, limits)
    except ImageTooLargeError as error:
        return {"key": row["key"], "kind": "error", "error": str(error), "too_large": True,
                "frame": blank}
    except ValueError as error:  # InvalidImageError: not a JPEG/PNG, damaged, truncated
        return {"key": row["key"], "kind": "error", "error": str(error), "too_large": False,
                "frame": blank}
    return {"key": row["key"], "kind": "frame", "error": "", "too_large": False, "frame": frame}


def score_images(settings: EngineSettings, images: list[tuple[int, bytes]],
                 input_size: tuple[int, int], adapter_path: str | None = None
                 ) -> Iterator[ImageScores]:
    """Score `(key, encoded image)` pairs on the Ray this process is connected to; yields one
    ImageScores per image as the dataset streams (in no particular order)."""
    import ray.data

    if not images:
        return
    count, resources = actor_placement(settings, ray.cluster_resources())
    dataset = ray.data.from_items([{"key": key, "image": data} for key, data in images],
                                  override_num_blocks=min(len(images), 8))
    dataset = dataset.map(decode_image_row, fn_kwargs={
        "input_size": tuple(input_size), "limits": image_limits(settings)})
    dataset = dataset.map_batches(
        BatchClassifier,
        fn_constructor_kwargs={"settings": settings, "adapter_path": adapter_path},
        batch_size=settings.max_batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=count),
        **resources,
    )
    for row in dataset.iter_rows():
        failed = row["kind"] == "error"
        yield ImageScores(int(row["key"]), None if failed else np.asarray(row["confidences"]),
                          str(row["error"]), bool(row["too_large"]))
