"""The fixed cost of one job: what a short video spends outside decoding and the model.

A warm LocalRunner (Ray up, inference pool loaded, as the CLI, the client and a server keep it)
moderates the 10 s 360p benchmark clip again and again; each run times its parts (probe, plan,
the segments on Ray, then the whole job with its assembly) and, in the same round, the clip's
decode and its frames through the model alone in this process. Overhead = the job's wall time
minus decode minus model: an upper bound on what Ray round-trips, object-store copies and result
assembly cost (smaller where decode and model overlap).

    python -m benchmarks.bench_job_overhead [--runs 8] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from benchmarks.machine import machine_record
from benchmarks.videos import BASE_CLIP_S, bench_video
from engine.config import load_settings
from engine.local_runner import LocalRunner
from engine.video import decode_segment, plan_segments
from models.default import load_default_classifier

RESULTS = Path(__file__).resolve().parent / "results" / "job_overhead.json"


def median_ms(seconds: list[float]) -> float:
    return round(1000.0 * statistics.median(seconds), 1)


def time_runs(runner: LocalRunner, classifier, video: str, runs: int) -> dict[str, list[float]]:
    """Per run, interleaved so the machine's load falls on all alike: probe, plan and
    run_segments seconds; a whole `moderate` (those three, thresholding, assembly); then the
    clip decoded alone (one thread, as a segment task does) and its frames through the model."""
    cluster = runner.cluster
    probe = cluster.probe(video)
    (whole,) = plan_segments(probe, int(runner.settings.segment_length_s * 1000))  # one segment
    parts: dict[str, list[float]] = {name: [] for name in (
        "probe", "plan", "segments", "job", "decode_alone", "model_alone", "overhead")}
    for _ in range(runs):
        started = time.perf_counter()
        probe = cluster.probe(video)
        probed = time.perf_counter()
        segments = cluster.plan(probe)
        planned = time.perf_counter()
        cluster.run_segments(video, probe, segments, lambda segment, outcome: None,
                             decode_mode="accurate", adapter_path=None)
        parts["probe"].append(probed - started)
        parts["plan"].append(planned - probed)
        parts["segments"].append(time.perf_counter() - planned)
        started = time.perf_counter()
        runner.moderate(video)
        parts["job"].append(time.perf_counter() - started)
        started = time.perf_counter()
        batch = decode_segment(video, probe, whole, runner.settings.sample_interval_ms,
                               (224, 224), threads=1, hwaccel="none")
        decoded = time.perf_counter()
        classifier.classify(batch.frames)
        parts["decode_alone"].append(decoded - started)
        parts["model_alone"].append(time.perf_counter() - decoded)
        parts["overhead"].append(parts["job"][-1] - parts["decode_alone"][-1]
                                 - parts["model_alone"][-1])
    parts["frames"] = [len(batch.frames)]
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    settings = load_settings()
    video = str(bench_video("360p", BASE_CLIP_S))
    classifier = load_default_classifier(settings.weights_dir, precision=settings.precision)
    runner = LocalRunner(settings)
    try:
        runner.moderate(video)  # warm: Ray, the pool, oneDNN's kernels for these shapes
        parts = time_runs(runner, classifier, video, args.runs)
    finally:
        runner.shutdown()
    frames = parts.pop("frames")[0]
    report = {
        "benchmark": "job_overhead",
        "what": __doc__.split("\n\n")[1].replace("\n", " "),
        "video": Path(video).name,
        "frames": frames,
        "runs": args.runs,
        "machine": machine_record(settings.precision),
        "median_ms": {name: median_ms(values) for name, values in parts.items()},
        "overhead_share_of_job": round(statistics.median(parts["overhead"])
                                       / statistics.median(parts["job"]), 3),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({key: report[key] for key in ("frames", "median_ms",
                                                   "overhead_share_of_job")}))


if __name__ == "__main__":
    main()
