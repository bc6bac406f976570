"""Decode-only throughput of the two decode modes: accurate (selective) vs keyframes.

Runs exactly what a segment task does before inference: `decode_segment` over every planned
20 s segment of a 60 s benchmark video (H.264, libx264 defaults with B-frames, 2 s GOP), one
sample per second, frames scaled to 224x224, software decoding, at FFmpeg threads=1 and 2.
Throughput is video seconds decoded per wall second. Other processes may share the machine,
so each figure is the best of `--repeats` runs (CPU seconds of this process are recorded too).

"keyframes_sequential" is keyframes mode the way it ran before keyframes were decoded alone
(and still runs as the fallback): every packet of the segment demuxed and sent to a decoder
that skips non-key frames. It is measured by making the keyframe-by-keyframe path unavailable.

    python -m benchmarks.bench_decode_modes [--sizes 720p,1080p] [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

import engine.video.decode as decode_module
from benchmarks.machine import machine_record
from benchmarks.videos import bench_video
from engine.video import decode_segment, plan_segments, probe_video
from engine.video.keyframes import KeyframeUnavailableError

RESULTS = Path(__file__).resolve().parent / "results" / "decode_modes.json"
VARIANTS = ("accurate", "keyframes", "keyframes_sequential")
THREAD_COUNTS = (1, 2)
SEGMENT_LENGTH_MS = 20_000
SAMPLE_INTERVAL_MS = 1000
OUTPUT_SIZE = (224, 224)
VIDEO_S = 60


def decode_video(path: str, probe, variant: str, threads: int) -> tuple[float, float, int]:
    """(wall s, CPU s, frames returned) to decode every segment of the video."""
    mode = "keyframes" if variant.startswith("keyframes") else variant
    with _sequential_keyframes(variant == "keyframes_sequential"):
        started_wall, started_cpu = time.perf_counter(), time.process_time()
        frames = 0
        for segment in plan_segments(probe, SEGMENT_LENGTH_MS):
            batch = decode_segment(
                path,
                probe,
                segment,
                SAMPLE_INTERVAL_MS,
                OUTPUT_SIZE,
                mode=mode,
                threads=threads,
                hwaccel="none",
            )
            frames += len(batch)
        return time.perf_counter() - started_wall, time.process_time() - started_cpu, frames


@contextmanager
def _sequential_keyframes(enabled: bool):
    """Make the keyframe-by-keyframe path unavailable, so keyframes mode decodes sequentially."""
    if not enabled:
        yield
        return

    def unavailable(*args, **kwargs):
        raise KeyframeUnavailableError("benchmarking the sequential keyframes decode")

    original = decode_module.decode_keyframes
    decode_module.decode_keyframes = unavailable
    try:
        yield
    finally:
        decode_module.decode_keyframes = original


def measure(size: str, repeats: int) -> dict:
    """Best-of-`repeats` seconds and video-s/s for each variant and thread count on one video.

    Repeats go round-robin over the variants, so a burst of load from other processes hits
    one run of several variants rather than every run of one.
    """
    path = str(bench_video(size, VIDEO_S))
    probe = probe_video(path)
    video_s = probe.metadata.duration_ms / 1000
    keys = [(variant, threads) for threads in THREAD_COUNTS for variant in VARIANTS]
    timings: dict[tuple[str, int], list] = {key: [] for key in keys}
    for _ in range(repeats):
        for variant, threads in keys:
            timings[(variant, threads)].append(decode_video(path, probe, variant, threads))
    runs = {}
    for (variant, threads), results in timings.items():
        best_wall_s = min(wall_s for wall_s, _, _ in results)
        runs[f"{variant}/threads={threads}"] = {
            "variant": variant,
            "threads": threads,
            "best_s": round(best_wall_s, 4),
            "all_s": [round(wall_s, 4) for wall_s, _, _ in results],
            "best_cpu_s": round(min(cpu_s for _, cpu_s, _ in results), 4),
            "video_s_per_s": round(video_s / best_wall_s, 1),
            "frames": results[0][2],
        }
        print(
            f"{size:5s} {variant:20s} threads={threads}: {video_s / best_wall_s:7.1f} "
            f"video-s/s (wall s {[round(wall_s, 3) for wall_s, _, _ in results]})",
            flush=True,
        )
    return {
        "video": Path(path).name,
        "size": size,
        "video_s": video_s,
        "keyframes": len(probe.keyframes_ms),
        "runs": runs,
        "keyframes_speedup_over_accurate": _speedups(runs, "keyframes"),
        "keyframes_sequential_speedup_over_accurate": _speedups(runs, "keyframes_sequential"),
    }


def _speedups(runs: dict, variant: str) -> dict:
    return {
        f"threads={threads}": round(
            runs[f"accurate/threads={threads}"]["best_s"]
            / runs[f"{variant}/threads={threads}"]["best_s"],
            1,
        )
        for threads in THREAD_COUNTS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="720p,1080p")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    report = {
        "what": "decode_segment over all 20 s segments of a 60 s H.264 video (libx264 defaults, "
        "B-frames, 2 s GOP), 1 sample/s, 224x224 output, software decode; best of repeats",
        "machine": {**machine_record(), "load_average_at_start": os.getloadavg()},
        "repeats": args.repeats,
        "videos": [measure(size, args.repeats) for size in args.sizes.split(",")],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
