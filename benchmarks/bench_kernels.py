"""Frames/s of frame preprocessing (decoded 4:2:0 frame -> 224x224 model input), side by side.

Adapters behind one interface, each timed on the same batch of 8 random frames:
- `torch_reference`: kernels.yuv_to_rgb_resized_reference on CPU (the engine's CPU path);
- `torch_naive`: convert the whole frame to float RGB, then F.interpolate (what one writes
  first; same result);
- `swscale`: PyAV frame.reformat(rgb24, 224x224, BILINEAR, threads = torch's) per frame,
  then the same normalisation in torch (what the decode code does today);
- `triton` and `torch_naive_cuda`: only when CUDA is available.
All produce float32 NCHW normalised with ImageNet mean/std. No decode is included.
Writes benchmarks/results/kernels.json and prints a markdown table.

    python benchmarks/bench_kernels.py [--sizes 1080p 720p] [--formats yuv420p nv12]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import machine_record
from kernels.yuv import yuv_to_model_input, yuv_to_rgb_full_resolution_reference

RESULTS = Path(__file__).resolve().parent / "results" / "kernels.json"
SIZES = {"1080p": (1080, 1920), "720p": (720, 1280), "360p": (360, 640)}
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
OUT_HW = (224, 224)
BATCH = 8


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["1080p", "720p"], choices=sorted(SIZES))
    parser.add_argument(
        "--formats", nargs="+", default=["yuv420p", "nv12"], choices=["yuv420p", "nv12"]
    )
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[1, os.cpu_count() or 1],
        help="torch intra-op thread counts to measure (Ray workers often use 1)",
    )
    parser.add_argument("--min-seconds", type=float, default=2.0, help="timed wall time per cell")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args()


def make_frames(fmt: str, height: int, width: int) -> list[av.VideoFrame]:
    """Random-content frames with FFmpeg's own padded line sizes, tagged BT.709 limited."""
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(BATCH):
        frame = av.VideoFrame(width, height, fmt)
        for plane in frame.planes:
            plane.update(rng.integers(16, 236, plane.buffer_size, dtype=np.uint8).tobytes())
        frame.colorspace, frame.color_range = 1, 1
        frames.append(frame)
    return frames


def batch_planes(frames, device: str):
    """Plane tensors of the batch (same helper the engine would use), on `device`."""
    from kernels.av_planes import planes_from_av_frame, stack_planes

    batch = stack_planes([planes_from_av_frame(frame) for frame in frames])
    return batch.fmt, tuple(p.to(device) for p in batch.planes)


def torch_reference(frames, fmt, planes):
    return yuv_to_model_input(planes, fmt, "bt709", "limited", OUT_HW, MEAN, STD)


def torch_naive(frames, fmt, planes):
    rgb = yuv_to_rgb_full_resolution_reference(planes, fmt, "bt709", "limited")
    resized = F.interpolate(rgb, size=OUT_HW, mode="bilinear", align_corners=False)
    mean = torch.tensor(MEAN, device=rgb.device)[:, None, None]
    std = torch.tensor(STD, device=rgb.device)[:, None, None]
    return (resized / 255.0 - mean) / std


def swscale(frames, fmt, planes):
    arrays = [
        f.reformat(
            format="rgb24",
            width=OUT_HW[1],
            height=OUT_HW[0],
            interpolation="BILINEAR",
            src_colorspace="ITU709",
            src_color_range="MPEG",
            dst_color_range="JPEG",
            threads=torch.get_num_threads(),  # same thread budget as the torch adapters
        ).to_ndarray()
        for f in frames
    ]
    rgb = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()
    mean = torch.tensor(MEAN)[:, None, None]
    std = torch.tensor(STD)[:, None, None]
    return (rgb / 255.0 - mean) / std


def frames_per_second(run, frames, fmt, planes, min_seconds: float, cuda: bool) -> dict:
    """Warm up twice, then 5 rounds; best = undisturbed estimate, median = busy machine."""
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for _ in range(2):
        run(frames, fmt, planes)
    sync()
    rates = []
    for _ in range(5):
        calls, started = 0, time.perf_counter()
        while calls < 2 or time.perf_counter() - started < min_seconds / 5:
            run(frames, fmt, planes)
            calls += 1
        sync()
        rates.append(calls * BATCH / (time.perf_counter() - started))
    return {"frames_per_s": round(max(rates), 1), "median": round(float(np.median(rates)), 1)}


def adapters(cuda: bool) -> list[tuple[str, str, object]]:
    cpu = [
        ("torch_reference", "cpu", torch_reference),
        ("torch_naive", "cpu", torch_naive),
        ("swscale", "cpu", swscale),
    ]
    if not cuda:
        return cpu
    return cpu + [("triton", "cuda", torch_reference), ("torch_naive_cuda", "cuda", torch_naive)]


def main() -> None:
    args = parse_args()
    cuda = torch.cuda.is_available()
    load_before = os.getloadavg()[0]
    results = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for size in args.sizes:
            for fmt in args.formats:
                results.extend(measure_cell(size, fmt, threads, cuda, args.min_seconds))
    report = {
        "benchmark": "kernels",
        "what": f"batch of {BATCH} decoded frames -> float32 (N,3,224,224) normalised; no decode",
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "machine": {**machine_record(), "gpu": torch.cuda.get_device_name(0) if cuda else None},
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print_table(results)


def measure_cell(size: str, fmt: str, threads: int, cuda: bool, min_seconds: float) -> list[dict]:
    """Every adapter on one batch; swscale gets the same thread count as torch."""
    frames = make_frames(fmt, *SIZES[size])
    rows = []
    for name, device, run in adapters(cuda):
        plane_fmt, planes = batch_planes(frames, device)
        rate = frames_per_second(run, frames, plane_fmt, planes, min_seconds, device == "cuda")
        rows.append(
            {
                "size": size,
                "format": fmt,
                "implementation": name,
                "device": device,
                "torch_threads": threads,
                **rate,
            }
        )
        print(
            f"{size} {fmt} {name} threads={threads}: {rate['frames_per_s']} frames/s "
            f"(median {rate['median']})",
            flush=True,
        )
    return rows


def print_table(results: list[dict]) -> None:
    print(
        "\n| size | format | implementation | device | torch threads | frames/s (best) | median |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in results:
        print(
            f"| {row['size']} | {row['format']} | {row['implementation']} | {row['device']} "
            f"| {row['torch_threads']} | {row['frames_per_s']} | {row['median']} |"
        )


if __name__ == "__main__":
    main()
