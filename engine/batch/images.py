"""Images in bulk on Ray Data (the media analysis jobs of engine/jobs/media_analysis.py):
encoded images -> model frames -> scores, optionally through a Custom Moderation adapter.

The same stages as a video batch where they can be: the frames come from engine/video/image.py
exactly as DetectModerationLabels makes them, and the model stage is stages.BatchClassifier (a
pool of actors, one per GPU or `inference_actors` on CPU) or, inside a server, the server's own
inference actors (`pool_actors`): a GPU the pool holds cannot host a second model actor, and
the pool is what DetectModerationLabels uses, so both answer from the same model copy. A bad image becomes an
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


def classify_on_pool(batch: dict[str, np.ndarray], actors: list,
                     adapter_path: str | None) -> dict[str, np.ndarray]:
    """The model stage on a server's inference actors: the batch's frames go to one of them
    (`classify`, or `classify_adapted` with an adapter), batched there with every caller's."""
    import ray

    frames = batch.pop("frame")
    wanted = batch["kind"] == "frame"
    actor = actors[int(batch["key"][0]) % len(actors)]
    picked = np.ascontiguousarray(frames[wanted] if wanted.any() else frames[:1])
    call = (actor.classify.remote(picked) if adapter_path is None
            else actor.classify_adapted.remote(picked, adapter_path))
    scores = np.asarray(ray.get(call), np.float32)
    confidences = np.zeros((len(frames), scores.shape[1]), dtype=np.float32)
    if wanted.any():
        confidences[wanted] = scores
    batch["confidences"] = confidences
    return batch


def score_images(settings: EngineSettings, images: list[tuple[int, bytes]],
                 input_size: tuple[int, int], adapter_path: str | None = None,
                 pool_actors: list | None = None) -> Iterator[ImageScores]:
    """Score `(key, encoded image)` pairs on the Ray this process is connected to; yields one
    ImageScores per image as the dataset streams (in no particular order). `pool_actors`:
    inference actors to classify on (a server's pool) instead of a BatchClassifier pool."""
    import ray.data

    if not images:
        return
    dataset = ray.data.from_items([{"key": key, "image": data} for key, data in images],
                                  override_num_blocks=min(len(images), 8))
    dataset = dataset.map(decode_image_row, fn_kwargs={
        "input_size": tuple(input_size), "limits": image_limits(settings)})
    if pool_actors:
        dataset = dataset.map_batches(
            classify_on_pool, fn_kwargs={"actors": list(pool_actors),
                                         "adapter_path": adapter_path},
            batch_size=settings.max_batch_size, batch_format="numpy", num_cpus=0)
    else:
        count, resources = actor_placement(settings, ray.cluster_resources())
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
