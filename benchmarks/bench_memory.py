"""Peak RSS of a segment worker does not grow with video length.

A segment worker decodes one segment at a time and keeps only that segment's sampled frames
(already scaled to the model's input size). This runs exactly that loop (`decode_segment` over
every planned segment of a video, in a fresh process so ru_maxrss is its own) for a short video
and one 10x longer, and reports both peaks.

    python -m benchmarks.bench_memory [--short-s 60] [--size 640x360] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from benchmarks.machine import machine_record


def write_test_video(path: Path, duration_s: float, size: tuple[int, int], fps: int = 30) -> None:
    """A moving-gradient H.264 video, 2 s GOP, libx264 defaults with B-frames."""
    width, height = size
    columns = np.arange(width, dtype=np.int32)[None, :]
    rows = np.arange(height, dtype=np.int32)[:, None]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.options = {"g": str(2 * fps), "preset": "ultrafast", "bf": "3"}
        for index in range(int(duration_s * fps)):
            picture = np.empty((height, width, 3), np.uint8)
            picture[..., 0] = (columns * 2 + index * 3) % 256
            picture[..., 1] = (rows * 2 + index) % 256
            picture[..., 2] = (columns + rows + index * 5) % 256
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(stream.encode(None))


def peak_rss_mb() -> float:
    """This process's own high-water RSS (VmHWM). Unlike ru_maxrss it is not inherited from the
    parent across fork/exec, so a spawned worker reports only its own memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not found in /proc/self/status")


def _worker_loop(video: str, segment_length_s: float, queue) -> None:
    from engine.video import decode_segment, plan_segments, probe_video

    started = time.perf_counter()
    probe = probe_video(video)
    frames = 0
    for segment in plan_segments(probe, int(segment_length_s * 1000)):
        batch = decode_segment(video, probe, segment, 1000, (224, 224))
        frames += len(batch)
    queue.put({
        "peak_rss_mb": peak_rss_mb(),
        "sampled_frames": frames,
        "seconds": time.perf_counter() - started,
        "video_s": probe.metadata.duration_ms / 1000,
    })


def measure_worker_peak_rss(video: str, segment_length_s: float = 20.0) -> dict:
    """Run the segment-worker loop over the whole video in a fresh process; return its peak RSS."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_worker_loop, args=(video, segment_length_s, queue))
    process.start()
    result = queue.get(timeout=1800)
    process.join()
    return result


def run(short_s: float, size: tuple[int, int], workdir: Path) -> dict:
    report = {"size": f"{size[0]}x{size[1]}", "segment_length_s": 20.0,
              "machine": machine_record(), "runs": []}
    for duration_s in (short_s, short_s * 10):
        video = workdir / f"memory-{int(duration_s)}s.mp4"
        if not video.exists():
            write_test_video(video, duration_s, size)
        report["runs"].append(measure_worker_peak_rss(str(video)))
    short, long = report["runs"]
    report["long_over_short_peak_rss"] = round(long["peak_rss_mb"] / short["peak_rss_mb"], 3)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short-s", type=float, default=60.0)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "memory.json")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as workdir:
        report = run(args.short_s, size, Path(workdir))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
