"""How much faster `keyframes` mode can be than `accurate` end to end on this machine, from the
CPU work each mode must do: an upper bound, whatever the scheduling.

Both modes run the model on their frames (accurate: one per sample; keyframes: one per distinct
keyframe its samples snap to), so the end-to-end ratio is at most

    (accurate decode CPU + accurate frames x model CPU per frame)
    / (keyframes decode CPU + keyframes frames x model CPU per frame)

with CPU seconds measured here: `decode_segment` over every 20 s segment of the 60 s benchmark
video in each mode (one FFmpeg thread, software), and the default model's CPU time per frame
at batch 16 with one and with two torch threads (the cheaper figure is used: the bound is the
most favourable case). The bound assumes perfect overlap of decode and model in both modes.

    python -m benchmarks.bench_mode_bound [--sizes 720p,1080p] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import machine_record
from benchmarks.videos import bench_video
from engine.video import decode_segment, plan_segments, probe_video, unique_frames

RESULTS = Path(__file__).resolve().parent / "results" / "mode_bound.json"
SEGMENT_LENGTH_MS = 20_000
SAMPLE_INTERVAL_MS = 1000
BATCH_SIZE = 16
VIDEO_S = 60


def decode_cost(path: str, mode: str, repeats: int,
                segment_length_ms: int = SEGMENT_LENGTH_MS) -> tuple[float, int]:
    """(least CPU seconds over `repeats`, distinct frames) to decode the video in `mode`."""
    probe = probe_video(path)
    best, frames = float("inf"), 0
    for _ in range(repeats):
        started = time.process_time()
        frames = 0
        for segment in plan_segments(probe, segment_length_ms):
            batch = unique_frames(
                decode_segment(path, probe, segment, SAMPLE_INTERVAL_MS, (224, 224), mode=mode,
                               threads=1, hwaccel="none")
            )
            frames += len(batch)
        best = min(best, time.process_time() - started)
    return best, frames


def model_cost_per_frame(classifier, threads: int, repeats: int) -> float:
    """Least CPU seconds per frame of the default model at batch 16 with `threads` threads."""
    torch.set_num_threads(threads)
    frames = np.random.default_rng(0).integers(0, 256, (BATCH_SIZE, 224, 224, 3), dtype=np.uint8)
    classifier.classify(frames)  # warm-up: first-call allocations and kernel selection
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        classifier.classify(frames)
        best = min(best, (time.process_time() - started) / BATCH_SIZE)
    return best


def model_costs(cache_dir: Path, precision: str, repeats: int) -> dict[int, float]:
    """Model CPU seconds per frame at batch 16 with one and with two torch threads."""
    from models.default import load_default_classifier

    classifier = load_default_classifier(cache_dir, precision=precision)
    return {threads: model_cost_per_frame(classifier, threads, repeats) for threads in (1, 2)}


def mode_work(path: str, mode: str, per_frame: float, repeats: int,
              segment_length_ms: int = SEGMENT_LENGTH_MS) -> dict:
    """One mode's CPU work on one video: its decode CPU seconds, its distinct frames, and
    their sum with the model's CPU seconds per frame."""
    decode_s, frames = decode_cost(path, mode, repeats, segment_length_ms)
    return {"decode_cpu_s": round(decode_s, 3), "frames": frames,
            "total_cpu_s": round(decode_s + frames * per_frame, 3)}


def engine_bound(videos: dict[str, str], cache_dir: str, precision: str, cores: int,
                 segment_length_ms: int, repeats: int = 2) -> dict:
    """The least wall time each mode of the engine can take on each video with `cores` cores:
    its CPU work (decode in one thread plus the model, as above) spread perfectly over them.
    `make bench` reports efficiency = this bound / the engine's wall time."""
    per_frame = min(model_costs(Path(cache_dir), precision, repeats).values())
    bounds = {"cores": cores, "model_cpu_s_per_frame": round(per_frame, 4), "videos": {}}
    for name, path in videos.items():
        bounds["videos"][name] = {}
        for mode in ("accurate", "keyframes"):
            work = mode_work(path, mode, per_frame, repeats, segment_length_ms)
            bounds["videos"][name][mode] = {
                **work, "bound_s": round(work["total_cpu_s"] / cores, 3)}
    return bounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="720p,1080p")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as cache:
        model = model_costs(Path(cache), "auto", args.repeats)
    per_frame = min(model.values())
    videos = {}
    for size in args.sizes.split(","):
        path = str(bench_video(size, VIDEO_S))
        accurate, keyframes = (mode_work(path, mode, per_frame, args.repeats)
                               for mode in ("accurate", "keyframes"))
        bound = accurate["total_cpu_s"] / keyframes["total_cpu_s"]
        decode_only = accurate["decode_cpu_s"] / keyframes["decode_cpu_s"]
        videos[size] = {"accurate": accurate, "keyframes": keyframes,
                        "keyframes_vs_accurate_upper_bound": round(bound, 2),
                        "decode_only_ratio": round(decode_only, 2)}
        print(f"{size}: accurate {accurate['total_cpu_s']:.2f} CPU-s "
              f"({accurate['decode_cpu_s']:.2f} decode, {accurate['frames']} frames), keyframes "
              f"{keyframes['total_cpu_s']:.2f} CPU-s ({keyframes['decode_cpu_s']:.2f} decode, "
              f"{keyframes['frames']} frames): end-to-end ratio at most {bound:.2f}x "
              f"(decode alone {decode_only:.2f}x)")
    report = {
        "benchmark": "mode_bound",
        "what": "upper bound of keyframes-vs-accurate end to end from CPU work, 60 s videos",
        "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_record(),
        "model_cpu_s_per_frame": {f"{threads}_threads": round(cost, 4)
                                  for threads, cost in model.items()},
        "videos": videos,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"model CPU per frame at batch {BATCH_SIZE}: "
          + ", ".join(f"{t} thread(s) {c * 1000:.1f} ms" for t, c in model.items()))


if __name__ == "__main__":
    main()
