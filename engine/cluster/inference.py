"""The shared inference pool: long-lived Ray actors that hold the classifier and batch frames
from every running segment task of every job.

An actor builds its model once (inside its own process, from the settings), then serves
`classify` calls concurrently through a BatchingQueue, so frames from many callers share one
forward pass. Actors restart on crash (Ray `max_restarts=-1`, in-flight calls re-sent up to
`max_task_retries` times), and segment tasks retry a failed call on another actor of the pool
(engine/cluster/retry.py), so killing an actor's process never fails a job.
"""

from __future__ import annotations

import itertools
import logging
import os

import numpy as np
import ray

from engine.cluster.batching import BatchingQueue
from engine.cluster.model_loader import ensure_model_available, load_classifier
from engine.cluster.process_stats import peak_rss_mb
from engine.cluster.scoring import FrameScorer
from engine.config import EngineSettings
from models.adapter import adaptable_taxonomy, model_identity
from models.base import ModelInfo
from models.taxonomy import Taxonomy

log = logging.getLogger(__name__)


class InferenceActor:
    """Holds one classifier; `classify` may be called by many tasks at once.

    Every batch yields labels, content types and frame features together (FrameScorer), so a
    call with an adapter (`classify_adapted`, a file in the data dir loaded on first use and
    cached until it changes) and a training call (`embed`) share batches with plain `classify`
    calls.
    """

    def __init__(self, settings: EngineSettings) -> None:
        self._classifier = load_pool_classifier(settings)
        self._scorer = FrameScorer(self._classifier)
        height, width = self._classifier.info.input_size
        self._queue = BatchingQueue(
            self._scorer.rows,
            max_batch_size=settings.max_batch_size,
            max_wait_s=settings.max_batch_wait_ms / 1000.0,
            frame_shape=(height, width, 3),
        )
        log.info("inference actor pid %s loaded %s %s", os.getpid(), self._classifier.info.name,
                 self._classifier.info.version)

    async def classify(self, frames: np.ndarray) -> np.ndarray:
        return self._scorer.plain(await self._queue.submit(frames))

    async def embed(self, frames: np.ndarray) -> np.ndarray:
        """Frame features (N, F) for training an adapter."""
        return self._scorer.features(await self._queue.submit(frames))

    async def classify_adapted(self, frames: np.ndarray, adapter_path: str) -> np.ndarray:
        """Like `classify`, with the adapter's labels merged in: columns are
        `adapted_taxonomy(adapter_path)`'s labels, then the content types."""
        return self._scorer.adapted(await self._queue.submit(frames), adapter_path)

    async def adapted_taxonomy(self, adapter_path: str) -> Taxonomy:
        return self._scorer.taxonomy_for(adapter_path)

    async def describe(self) -> tuple[Taxonomy, ModelInfo]:
        return self._classifier.taxonomy, self._classifier.info

    async def describe_adaptable(self) -> tuple[Taxonomy, str]:
        """The whole taxonomy adapters may train on, and the model identity they record."""
        return adaptable_taxonomy(self._classifier), model_identity(self._classifier)

    async def stats(self) -> dict:
        return self._queue.stats.as_dict() | {
            "pid": os.getpid(),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "queued_frames": self._queue.queued_frames,
        }


def inference_threads(settings: EngineSettings) -> int:
    """Intra-op threads for the model: the setting, else every core this process may use.

    Ray starts workers with OMP_NUM_THREADS=1 when they reserve no whole CPU, which would leave
    torch on one thread; a CPU actor shares the node with the decoders, so it takes all cores
    and lets the OS interleave them.
    """
    if settings.torch_threads:
        return settings.torch_threads
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def load_pool_classifier(settings: EngineSettings):
    """The classifier of a model-serving actor (this pool's, or engine.batch's Ray Data
    stage): loaded once, with torch on `inference_threads(settings)` threads."""
    import torch

    threads = inference_threads(settings)
    torch.set_num_threads(threads)
    return load_classifier(settings.replace(torch_threads=threads))


def actor_placement(settings: EngineSettings, cluster_resources: dict) -> tuple[int, dict]:
    """How many inference actors and what each reserves: one per GPU where the cluster has
    GPUs (each owns its device and batches every job's frames), else the configured number
    of CPU actors."""
    gpus = int(cluster_resources.get("GPU", 0))
    if gpus >= 1 and settings.use_gpus == "auto":
        return gpus, {"num_gpus": 1, "num_cpus": 1}
    return settings.inference_actors, {"num_cpus": settings.inference_actor_cpus}


class InferencePool:
    """A fixed set of inference actors shared by all jobs of one runner."""

    def __init__(self, settings: EngineSettings) -> None:
        count, resources = actor_placement(settings, ray.cluster_resources())
        # Local Ray: the actors run on this machine, whose CPU the driver can check.
        local = not settings.ray_address
        ensure_model_available(settings, ("cuda" if resources.get("num_gpus") else "cpu")
                               if local else None)
        actor_class = ray.remote(InferenceActor).options(
            **resources,
            max_restarts=-1,
            max_task_retries=2,
            max_concurrency=256,
        )
        self.actors = [actor_class.remote(settings) for _ in range(count)]
        log.info("inference pool: %d actor(s) with %s", count, resources)
        self._round_robin = itertools.cycle(range(len(self.actors)))
        taxonomy, info = ray.get(self.actors[0].describe.remote())
        self.taxonomy: Taxonomy = taxonomy
        self.model_info: ModelInfo = info
        self._adaptable: tuple[Taxonomy, str] | None = None

    @property
    def adaptable(self) -> tuple[Taxonomy, str]:
        """(the taxonomy adapters may train on, the model identity they record)."""
        if self._adaptable is None:
            self._adaptable = ray.get(self.actors[0].describe_adaptable.remote())
        return self._adaptable

    def pick(self):
        """The actor a new segment task should send its frames to."""
        return self.actors[next(self._round_robin)]

    def spares_for(self, actor) -> list:
        """The other actors of the pool: where a task sends its frames if `actor` dies."""
        return [other for other in self.actors if other is not actor]

    def stats(self, timeout_s: float | None = None) -> list[dict]:
        """Each actor's batching figures; raises ray's GetTimeoutError after `timeout_s`."""
        return ray.get([actor.stats.remote() for actor in self.actors], timeout=timeout_s)

    def shutdown(self) -> None:
        """Kill the actors; nothing to do once this process's Ray is gone (they went with it)."""
        if ray.is_initialized():
            for actor in self.actors:
                ray.kill(actor)
        self.actors = []
