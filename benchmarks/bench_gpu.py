"""GPU figures for benchmarks/gpu_check.sh: NVDEC decode (accurate and keyframes, 1080p H.264 and
HEVC), the YUV kernel, the model at batch 64/256 in bf16 and the fused decode -> kernel path.

Each figure is measured side by side with its CPU counterpart in the same run (ratios, not lone
times). Videos are generated here (a few seconds of 1080p). The model is timed only when its
weights are in the cache (nothing is downloaded); otherwise the JSON says it was skipped.
Stops starting new measurements once GPU_CHECK_BUDGET_S is nearly spent.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from engine.video import decode_segment, plan_segments, probe_video
from kernels.yuv import yuv_to_model_input
from tests.media import make_smooth_video

BUDGET_S = float(os.environ.get("GPU_CHECK_BUDGET_S", "360"))
STARTED = time.perf_counter()


def _left_s() -> float:
    return BUDGET_S - (time.perf_counter() - STARTED)


def _decode_fps(path: Path, hwaccel: str, mode: str, preprocess: str) -> dict:
    probe = probe_video(str(path))
    started = time.perf_counter()
    frames = 0
    for segment in plan_segments(probe, 2000):
        frames += len(decode_segment(str(path), probe, segment, 1000, (224, 224), mode=mode,
                                     hwaccel=hwaccel, preprocess=preprocess))
    wall_s = time.perf_counter() - started
    return {"wall_s": round(wall_s, 3),
            "video_s_per_s": round(probe.metadata.duration_ms / 1000 / wall_s, 2),
            "sampled_frames": frames}


def _kernel_fps(batch: int) -> dict:
    y = torch.randint(0, 256, (batch, 1080, 1920), dtype=torch.uint8, device="cuda")
    uv = torch.randint(0, 256, (batch, 540, 1920), dtype=torch.uint8, device="cuda")
    args = ((y, uv), "nv12", "bt709", "limited", (224, 224))
    for antialias in (False, True):
        yuv_to_model_input(*args, antialias=antialias)
    torch.cuda.synchronize()
    result = {}
    for antialias in (False, True):
        started = time.perf_counter()
        for _ in range(20):
            yuv_to_model_input(*args, antialias=antialias)
        torch.cuda.synchronize()
        name = "antialias" if antialias else "bilinear"
        result[name + "_frames_per_s"] = round(20 * batch / (time.perf_counter() - started), 1)
    return result


def _model_fps(cache_dir: Path) -> dict:
    try:
        from models.default import load_default_classifier

        classifier = load_default_classifier(cache_dir, device="cuda", precision="bf16")
    except Exception as error:  # noqa: BLE001 - reported in the JSON, never faked
        return {"skipped": f"{type(error).__name__}: {error}"[:300]}
    result = {}
    for batch in (64, 256):
        frames = torch.randint(0, 256, (batch, 224, 224, 3), dtype=torch.uint8).numpy()
        classifier.classify(frames)
        started = time.perf_counter()
        for _ in range(3):
            classifier.classify(frames)
        result[f"batch_{batch}_frames_per_s"] = round(3 * batch / (time.perf_counter() - started), 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--weights", type=Path, default=Path.home() / ".cache/modengine/weights")
    args = parser.parse_args()
    report: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                    "budget_s": BUDGET_S, "decode": {}, "note": (
                        "1080p, 1 sample/s to 224x224; nvdec rows keep frames on the GPU "
                        "(preprocess auto = the fused NVDEC -> Triton path), the software row "
                        "is the CPU path on this machine's cores")}
    work = Path("/tmp/gpu_check")
    work.mkdir(exist_ok=True)
    for codec in ("h264", "hevc"):
        path = work / f"{codec}-1080p.mp4"
        if not path.exists():
            make_smooth_video(path, size=(1920, 1080), duration_s=10.0, fps=30, codec=codec)
        for hwaccel, preprocess in (("cuda", "auto"), ("cuda", "swscale"), ("none", "swscale")):
            for mode in ("accurate", "keyframes"):
                if _left_s() < 30:
                    break
                key = f"{codec}/{mode}/{hwaccel}/{preprocess}"
                try:
                    report["decode"][key] = _decode_fps(path, hwaccel, mode, preprocess)
                except Exception as error:  # noqa: BLE001 - recorded, the rest still runs
                    report["decode"][key] = {"error": f"{type(error).__name__}: {error}"[:300]}
                print(key, report["decode"][key], flush=True)
    if _left_s() > 20:
        report["kernel_1080p_nv12_batch_8"] = _kernel_fps(8)
    if _left_s() > 60:
        report["model_bf16"] = _model_fps(args.weights)
    report["elapsed_s"] = round(time.perf_counter() - STARTED, 1)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
