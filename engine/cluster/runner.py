"""Runs segments on the cluster: probe in a worker, plan keyframe-aligned segments, one Ray
task per segment with its frames classified in the shared inference pool, each segment's
outcome (raw confidences per sampled frame) handed back to the caller as it finishes.

The runner owns its Ray connection (a local Ray it starts, or an existing cluster at
`settings.ray_address`) and the inference pool. It does not assemble results (thresholds,
aggregation, order: engine/results, called by its callers) and knows nothing about HTTP, job
storage or the wire. Failed segments are retried by the rules of engine/cluster/retry.py;
`shutdown` first stops every running `run_segments` (they raise RunnerStoppedError) and then
the Ray it started.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from engine.cluster.failures import (
    ClusterError,
    RunnerStoppedError,
    describe_exception,
    describe_segment,
)
from engine.cluster.inference import InferencePool
from engine.cluster.ray_owner import RayOwnerThread
from engine.cluster.retry import (
    DETERMINISTIC_ERRORS,
    SEGMENT_SYSTEM_RETRIES,
    SegmentRetryPolicy,
    root_cause,
)
from engine.cluster.segment_task import moderate_segment, probe_remote
from engine.cluster.types import (
    AdapterTrainingRequest,
    AdapterTrainingResult,
    SegmentOutcome,
    SegmentTask,
    segment_decode_request,
)
from engine.config import EngineSettings
from engine.video import plan_segments
from engine.video.timeline import display_name
from engine.video.types import Segment, VideoProbe
from models.base import ModelInfo, NoModelInstalledError
from models.taxonomy import Taxonomy

log = logging.getLogger(__name__)

SegmentCallback = Callable[[Segment, SegmentOutcome], None]
_STOP_POLL_S = 0.5
"""How often a segment loop checks whether the runner is shutting down."""


class ClusterRunner:
    """Runs segments of videos on Ray; safe to share between jobs (one pool for all of them)."""

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self._owns_ray = False
        self._ray_owner: RayOwnerThread | None = None
        self._pool: InferencePool | None = None
        # Jobs run in several threads; Ray and the pool must be started exactly once.
        self._start_lock = threading.RLock()
        self._retry_policy = SegmentRetryPolicy()
        self._stopping = threading.Event()
        self._active_runs = 0
        self._runs_changed = threading.Condition()
        self._slots: SegmentSlots | None = None

    # -- connection and pool ------------------------------------------------------------------

    def _ensure_ray(self) -> None:
        with self._start_lock:
            self._init_ray_once()

    def _init_ray_once(self) -> None:
        if self._stopping.is_set():
            raise RunnerStoppedError("the engine is shutting down")
        if ray.is_initialized():
            return
        kwargs: dict = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.getLevelName(self.settings.ray_log_level.upper()),
        }
        if self.settings.ray_address:
            kwargs["address"] = self.settings.ray_address
        else:
            # Start our own Ray (never join whatever cluster happens to run on this machine,
            # such as one a killed earlier server left behind), listening on loopback only.
            kwargs["address"] = "local"
            kwargs["_node_ip_address"] = "127.0.0.1"
            if self.settings.ray_num_cpus is not None:
                kwargs["num_cpus"] = self.settings.ray_num_cpus
        # ray.init from a thread that lives until shutdown (see engine/cluster/ray_owner.py).
        self._ray_owner = RayOwnerThread()
        self._ray_owner.start(**kwargs)
        self._owns_ray = True

    @property
    def pool(self) -> InferencePool:
        with self._start_lock:
            if self._pool is None:
                self._ensure_ray()
                try:
                    self._pool = InferencePool(self.settings)
                except ray.exceptions.RayActorError as error:
                    raise _unwrap(error) from error
            return self._pool

    @property
    def taxonomy(self) -> Taxonomy:
        return self.pool.taxonomy

    @property
    def model_info(self) -> ModelInfo:
        return self.pool.model_info

    @property
    def adaptable_taxonomy(self) -> Taxonomy:
        """Every label an adapter may be trained for (the model's whole taxonomy)."""
        return self.pool.adaptable[0]

    def taxonomy_for(self, adapter_path: str | None) -> Taxonomy:
        """The labels, in column order, of scores classified with this adapter (or none)."""
        if adapter_path is None:
            return self.taxonomy
        try:
            return ray.get(self.pool.pick().adapted_taxonomy.remote(adapter_path))
        except ray.exceptions.RayError as error:
            raise _unwrap(error) from error

    def train_adapter(self, request: AdapterTrainingRequest) -> AdapterTrainingResult:
        """Train an adapter in a Ray task that embeds its images through the shared pool."""
        from engine.cluster.adapter_training import train_adapter_remote
        from engine.video.image import ImageLimits

        pool, settings = self.pool, self.settings
        limits = ImageLimits(settings.max_image_object_bytes, settings.max_image_side_px,
                             settings.max_image_pixels)
        task = ray.remote(train_adapter_remote).options(
            num_cpus=settings.segment_task_cpus, max_retries=SEGMENT_SYSTEM_RETRIES,
            retry_exceptions=False, name="train_adapter")
        try:
            return ray.get(task.remote(request, pool.pick(), tuple(pool.model_info.input_size),
                                       limits, pool.adaptable[1]))
        except ray.exceptions.RayError as error:
            raise _unwrap(error) from error

    def inference_actors(self) -> list:
        """The shared pool's actors: engine.batch's image stage classifies on them inside a
        server, where the GPUs are the pool's (a second model actor could never be placed)."""
        return list(self.pool.actors)

    def inference_stats(self, timeout_s: float) -> list[dict] | None:
        """Each inference actor's batching figures (for metrics), or None while no pool exists:
        asking never starts Ray or builds the pool. Raises ray's GetTimeoutError after
        `timeout_s`."""
        pool = self._pool
        return None if pool is None else pool.stats(timeout_s=timeout_s)

    def shutdown(self, drain_timeout_s: float = 10.0) -> None:
        """Stop running segment loops (waiting up to `drain_timeout_s` for them to let go), then
        kill the pool and the Ray this runner started. The runner cannot be used afterwards."""
        self._stopping.set()
        with self._runs_changed:
            self._runs_changed.wait_for(lambda: self._active_runs == 0, timeout=drain_timeout_s)
        with self._start_lock:
            self._shutdown_locked()

    def _shutdown_locked(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if self._owns_ray and self._ray_owner is not None:
            self._ray_owner.stop()  # ray.shutdown in the thread that started Ray
            self._ray_owner = None
            self._owns_ray = False
            if self.settings.ray_address:
                log.info("disconnected from the Ray cluster at %s", self.settings.ray_address)
            else:
                log.info("the local Ray this runner started is shut down")

    # -- one video ----------------------------------------------------------------------------

    def probe(self, source: str) -> VideoProbe:
        """Probe in a worker; retried by the same rules as a segment (engine/cluster/retry.py)."""
        self._ensure_ray()
        task = ray.remote(probe_remote).options(
            num_cpus=0, max_retries=SEGMENT_SYSTEM_RETRIES, retry_exceptions=False
        )
        attempts = 0
        while True:
            attempts += 1
            try:
                return ray.get(task.remote(source))
            except ray.exceptions.RayError as error:
                if not self._retry_policy.should_retry(error, attempts):
                    raise _unwrap(error) from error
                log.warning(
                    "retrying the probe of %s after %s",
                    display_name(source),
                    describe_exception(root_cause(error)),
                )

    def plan(self, probe: VideoProbe) -> list[Segment]:
        return plan_segments(probe, round(self.settings.segment_length_s * 1000))

    def classify_frames(self, frames: np.ndarray, adapter_path: str | None = None) -> np.ndarray:
        """Scores (N, labels) of ready-made uint8 frames (N, H, W, 3) at the model's input size,
        from the same inference pool, batched with every running job's frames (images use it).
        With an adapter the label columns are `taxonomy_for(adapter_path)`'s.

        Counted as a run, so `shutdown` waits for it; an actor that dies mid-call is restarted
        and the call re-sent by Ray (the pool's max_task_retries).
        """
        with self._runs_changed:
            if self._stopping.is_set():
                raise RunnerStoppedError("the engine is shutting down")
            self._active_runs += 1
        try:
            actor = self.pool.pick()
            try:
                if adapter_path is not None:
                    return ray.get(actor.classify_adapted.remote(frames, adapter_path))
                return ray.get(actor.classify.remote(frames))
            except ray.exceptions.RayError as error:
                raise _unwrap(error) from error
        finally:
            with self._runs_changed:
                self._active_runs -= 1
                self._runs_changed.notify_all()

    def run_segments(
        self,
        source: str,
        probe: VideoProbe,
        segments: Sequence[Segment],
        on_segment_done: SegmentCallback,
        decode_mode: str | None = None,
        adapter_path: str | None = None,
    ) -> list[SegmentOutcome]:
        """Run the given segments, calling `on_segment_done(segment, outcome)` in this thread as
        each finishes. With an adapter, outcomes' label columns are `taxonomy_for(adapter_path)`'s.

        Returns every SegmentOutcome (scores, node, timings) in completion order.

        At most `max_segments_in_flight` tasks of this job, and `_slot_count` tasks of all jobs
        together, are submitted at once, so neither a long video nor many jobs flood the
        cluster (or the inference queue) with decoders and decoded frames.
        """
        with self._runs_changed:
            self._active_runs += 1
        try:
            return self._run_segments(
                source, probe, segments, on_segment_done, decode_mode or self.settings.decode_mode,
                adapter_path,
            )
        finally:
            with self._runs_changed:
                self._active_runs -= 1
                self._runs_changed.notify_all()

    def _run_segments(
        self, source, probe, segments, on_segment_done, decode_mode: str,
        adapter_path: str | None = None,
    ) -> list[SegmentOutcome]:
        pool = self.pool
        settings = self.settings
        task = ray.remote(moderate_segment)
        task_options = {
            "num_cpus": settings.segment_task_cpus,
            # A worker that dies (SIGKILL, OOM) is replaced and the task re-run by Ray; an
            # exception raised by the task comes back to us and SegmentRetryPolicy decides.
            "max_retries": SEGMENT_SYSTEM_RETRIES,
            "retry_exceptions": False,
        }
        placement = _segment_placement(settings.segment_task_cpus)

        def submit(segment: Segment) -> None:
            attempts[segment.index] += 1
            actor = pool.pick()
            # The name becomes the worker's process title ("ray::moderate_segment clip.mp4
            # #3" in ps/top): which video and segment a busy worker holds, signature-free.
            named = task.options(
                **task_options,
                scheduling_strategy=placement(segment.index),
                name=f"moderate_segment {display_name(source)} #{segment.index}",
            )
            decode = segment_decode_request(
                settings, source, probe, segment, pool.model_info.input_size, decode_mode
            )
            ref = named.remote(SegmentTask(decode, actor, pool.spares_for(actor), adapter_path,
                                           chunk_frames=settings.segment_chunk_frames))
            running[ref] = segment

        waiting = list(segments)
        running: dict = {}
        attempts: Counter[int] = Counter()
        outcomes: list[SegmentOutcome] = []
        window = self._window()
        slots = self._cluster_slots()
        try:
            while waiting or running:
                if self._stopping.is_set():
                    raise RunnerStoppedError("the engine is shutting down")
                while waiting and len(running) < window and slots.take(wait=not running):
                    try:
                        submit(waiting.pop(0))
                    except BaseException:
                        slots.give_back()
                        raise
                if not running:
                    continue  # every slot is held by other jobs: ask again
                done, _ = ray.wait(list(running), num_returns=1, timeout=_STOP_POLL_S)
                for ref in done:
                    segment = running.pop(ref)
                    slots.give_back()
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.RayError as error:
                        self._handle_failure(segment, error, attempts[segment.index])
                        waiting.insert(0, segment)  # _handle_failure raised unless it may retry
                        continue
                    outcomes.append(outcome)
                    on_segment_done(segment, outcome)
        except BaseException:
            for ref in running:
                ray.cancel(ref, force=True)
            raise
        finally:
            for _ in running:
                slots.give_back()
        return outcomes

    def _handle_failure(
        self, segment: Segment, error: ray.exceptions.RayError, attempts: int
    ) -> None:
        """Return if the segment may run again; otherwise raise the error that fails the job."""
        if self._retry_policy.should_retry(error, attempts):
            log.warning(
                "retrying %s after %s",
                describe_segment(segment.index, segment.start_ms, segment.stop_ms),
                describe_exception(root_cause(error)),
            )
            return
        raise self._retry_policy.final_error(segment, error, attempts) from error

    def _window(self) -> int:
        """Segment tasks one job may have submitted (`max_segments_in_flight`, else as many as
        the whole runner may: `_cluster_slots`)."""
        return self.settings.max_segments_in_flight or self._slot_count()

    def _slot_count(self) -> int:
        """One segment task more than the cluster's CPUs hold at once. A task that waits for
        its scores in ray.get gives its CPU back to Ray, which then starts whatever is queued:
        so submitted tasks, not reserved CPUs, are what actually run. One spare keeps a decoder
        feeding the model while the others wait; more would only fight the model for cores."""
        cpus = ray.cluster_resources().get("CPU", 2)
        return max(2, math.ceil(cpus / self.settings.segment_task_cpus) + 1)

    def _cluster_slots(self) -> SegmentSlots:
        """The runner-wide limit on running segment tasks, shared by every job: two jobs
        together run as many decoders as one, each job taking its turn."""
        with self._start_lock:
            if self._slots is None:
                self._slots = SegmentSlots(self._slot_count())
            return self._slots


class SegmentSlots:
    """Running segment tasks across jobs. A job with none running waits for a slot
    (`take(wait=True)`, up to the stop-poll interval, so its loop still notices shutdown); a
    job with some running only takes a free slot that no waiting job wants, so a long video
    never keeps a second job out."""

    def __init__(self, count: int) -> None:
        self._free = count
        self._waiting = 0
        self._changed = threading.Condition()

    def take(self, wait: bool) -> bool:
        with self._changed:
            if not wait:
                if self._waiting or not self._free:
                    return False
                self._free -= 1
                return True
            self._waiting += 1
            try:
                if not self._changed.wait_for(lambda: self._free > 0, timeout=_STOP_POLL_S):
                    return False
                self._free -= 1
                return True
            finally:
                self._waiting -= 1

    def give_back(self) -> None:
        with self._changed:
            self._free += 1
            self._changed.notify()


def _segment_placement(task_cpus: float) -> Callable[[int], object]:
    """Where segment i runs: round-robin over the alive nodes that can take a segment task.

    Segments are independent decode work, so one video should use every node. Ray's "SPREAD"
    is best effort and, with warm workers on the head node, often keeps everything there; a
    soft node affinity per segment spreads deterministically and still lets Ray place the
    task elsewhere if that node dies or cannot take it.
    """
    nodes = sorted(
        node["NodeID"]
        for node in ray.nodes()
        if node.get("Alive") and node.get("Resources", {}).get("CPU", 0) >= task_cpus
    )
    if len(nodes) < 2:
        return lambda index: "DEFAULT"
    return lambda index: NodeAffinitySchedulingStrategy(nodes[index % len(nodes)], soft=True)


def _unwrap(error: Exception) -> Exception:
    """Turn Ray's wrappers back into our own errors: VideoError / NoModelInstalledError as they
    are, anything else as a ClusterError with a one-line message (never Ray's traceback text)."""
    cause = root_cause(error)
    if isinstance(cause, DETERMINISTIC_ERRORS + (ClusterError,)):
        return cause
    if isinstance(error, ray.exceptions.RayActorError):
        text = str(error)
        for name in ("ModelCannotRunError", "NoModelInstalledError"):
            if name + ":" in text:
                return NoModelInstalledError(text.split(name + ":")[-1].strip().splitlines()[0])
        return ClusterError(f"The inference service failed to start: {describe_exception(cause)}")
    if isinstance(error, ray.exceptions.RayTaskError):
        return ClusterError(f"Reading the video failed: {describe_exception(cause)}")
    if isinstance(error, ray.exceptions.RayError):
        return ClusterError(f"The worker reading the video died ({type(error).__name__})")
    return error
