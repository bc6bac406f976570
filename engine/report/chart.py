"""The timeline chart: each top-level label's confidence over the sampled timestamps, as SVG.

The store keeps only detections at or above the job's MinConfidence, so a sample without a row
for a label is drawn at the baseline (0): the legend says so rather than pretending the value
was zero. Long videos are reduced to at most `MAX_POINTS` columns per series, each the maximum
of the samples it covers, so a spike is never averaged away. The SVG is built here as text,
every string escaped: no script, no external resource.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from engine.results.types import Detection

MAX_POINTS = 1200
"""Columns per series at most; more samples are merged (maximum per column)."""

SERIES_COLOURS = (
    "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e",
    "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
)
"""Distinct, colour-blind-tolerable hues; more labels than colours reuse them in order."""

WIDTH, HEIGHT = 960, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 20, 16, 40
_TICK_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
_MAX_TICKS = 10


@dataclass(frozen=True)
class Series:
    """One label's confidence at each plotted time (0 where nothing was stored)."""

    label: str
    colour: str
    times_ms: tuple[int, ...]
    confidences: tuple[float, ...]

    @property
    def peak(self) -> float:
        return max(self.confidences, default=0.0)


def build_series(
    detections: Sequence[Detection],
    sample_timestamps_ms: Sequence[int],
    level: int = 1,
    max_points: int = MAX_POINTS,
) -> list[Series]:
    """One series per label of `level` that has a stored detection, most confident first."""
    times = sorted(set(sample_timestamps_ms) | {d.timestamp_ms for d in detections})
    by_label: dict[str, dict[int, float]] = {}
    for detection in detections:
        if detection.level == level:
            values = by_label.setdefault(detection.name, {})
            values[detection.timestamp_ms] = max(
                values.get(detection.timestamp_ms, 0.0), detection.confidence
            )
    columns = _columns(len(times), max_points)
    peaks = {label: max(values.values()) for label, values in by_label.items()}
    series = []
    # Most confident first, so the strongest label gets the first (red) colour.
    for number, label in enumerate(sorted(by_label, key=lambda name: (-peaks[name], name))):
        values = by_label[label]
        series.append(
            Series(
                label=label,
                colour=SERIES_COLOURS[number % len(SERIES_COLOURS)],
                times_ms=tuple(times[start] for start, _ in columns),
                confidences=tuple(
                    max(values.get(t, 0.0) for t in times[start:stop]) for start, stop in columns
                ),
            )
        )
    return series


def points_per_column(sample_count: int, max_points: int = MAX_POINTS) -> int:
    """How many samples one plotted point stands for (1 unless the video is long)."""
    return -(-sample_count // max_points) if sample_count > max_points else 1


def _columns(count: int, max_points: int) -> list[tuple[int, int]]:
    step = points_per_column(count, max_points)
    return [(start, min(start + step, count)) for start in range(0, count, step)]


def render_timeline_svg(
    series: Sequence[Series], duration_ms: int, min_confidence: float
) -> str:
    """The chart as an inline <svg>: axes, grid, one polyline per series, dashed threshold."""
    end_ms = max(duration_ms, max((s.times_ms[-1] for s in series if s.times_ms), default=0), 1)
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM

    def x(ms: float) -> float:
        return _LEFT + plot_w * ms / end_ms

    def y(confidence: float) -> float:
        return _TOP + plot_h * (1 - confidence / 100)

    parts = [
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}"',
        ' role="img" aria-label="Confidence of each top-level label over time">',
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" class="plot-area"/>',
    ]
    for value in (0, 25, 50, 75, 100):
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y(value):.1f}"'
            f' y2="{y(value):.1f}"/>'
            f'<text class="axis" x="{_LEFT - 8}" y="{y(value) + 4:.1f}" text-anchor="end">{value}</text>'
        )
    step_s = _tick_step_s(end_ms / 1000)
    for tick_s in range(0, int(end_ms / 1000) + 1, step_s):
        tick_x = x(tick_s * 1000)
        parts.append(
            f'<line class="tick" x1="{tick_x:.1f}" x2="{tick_x:.1f}" y1="{_TOP + plot_h}"'
            f' y2="{_TOP + plot_h + 5}"/>'
            f'<text class="axis" x="{tick_x:.1f}" y="{_TOP + plot_h + 20}"'
            f' text-anchor="middle">{html.escape(format_clock_s(tick_s))}</text>'
        )
    parts.append(
        f'<text class="axis-title" x="{_LEFT + plot_w / 2:.1f}" y="{HEIGHT - 4}"'
        ' text-anchor="middle">video time</text>'
        f'<text class="axis-title" x="14" y="{_TOP + plot_h / 2:.1f}" text-anchor="middle"'
        f' transform="rotate(-90 14 {_TOP + plot_h / 2:.1f})">confidence %</text>'
    )
    for item in series:
        points = " ".join(f"{x(t):.1f},{y(c):.1f}" for t, c in _steps(item, end_ms))
        parts.append(
            f'<polyline class="series" data-label="{html.escape(item.label)}"'
            f' stroke="{item.colour}" points="{points}">'
            f"<title>{html.escape(item.label)} (peak {item.peak:.1f}%)</title></polyline>"
        )
    threshold_y = y(min_confidence)
    parts.append(
        f'<line class="threshold" x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{threshold_y:.1f}"'
        f' y2="{threshold_y:.1f}"><title>MinConfidence {min_confidence:g}</title></line>'
        f'<text class="threshold-label" x="{_LEFT + plot_w - 4}" y="{threshold_y - 5:.1f}"'
        f' text-anchor="end">MinConfidence {min_confidence:g}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _steps(series: Series, end_ms: int) -> list[tuple[int, float]]:
    """Corners of a step line: a sampled value holds until the next sample (as a SEGMENTS row
    lasts until the next sample), the last one until the end of the video."""
    corners: list[tuple[int, float]] = []
    for t, confidence in zip(series.times_ms, series.confidences):
        if corners:
            corners.append((t, corners[-1][1]))
        corners.append((t, confidence))
    if corners and end_ms > corners[-1][0]:
        corners.append((end_ms, corners[-1][1]))
    return corners


def _tick_step_s(duration_s: float) -> int:
    for step in _TICK_STEPS_S:
        if duration_s / step <= _MAX_TICKS:
            return step
    return int(-(-duration_s // _MAX_TICKS))


def format_clock_s(seconds: int) -> str:
    """m:ss, or h:mm:ss past an hour."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
