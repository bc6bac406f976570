"""Regroups the model stage's rows per video in the driver, as they stream in.

A video is finished when every one of its segments has delivered all its rows (each row
says how many its segment has, and how many segments the video has). Only frame scores are
kept here, never frames, so memory grows with the number of sampled frames, not pixels.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from engine.results.types import FrameScores


@dataclass
class FinishedVideo:
    """A video whose rows are all in: its scores, or why it failed."""

    video: str
    metadata_json: str
    scores: list[FrameScores]
    error: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.error)


@dataclass
class _PendingVideo:
    segment_count: int
    metadata_json: str = ""
    rows_seen: Counter = field(default_factory=Counter)
    rows_expected: dict[int, int] = field(default_factory=dict)
    scores: list[FrameScores] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def complete(self) -> bool:
        return len(self.rows_expected) == self.segment_count and all(
            self.rows_seen[index] >= expected for index, expected in self.rows_expected.items()
        )


class VideoCollector:
    """`add(row)` returns a FinishedVideo when that row completes its video, else None."""

    def __init__(self) -> None:
        self._pending: dict[str, _PendingVideo] = {}

    def add(self, row: dict) -> FinishedVideo | None:
        name = str(row["video"])
        state = self._pending.setdefault(name, _PendingVideo(int(row["segment_count"])))
        index = int(row["segment_index"])
        state.rows_expected[index] = int(row["rows_in_segment"])
        state.rows_seen[index] += 1
        state.metadata_json = state.metadata_json or str(row["metadata"])
        if row["kind"] == "error":
            state.errors.append(str(row["error"]))
        elif row["kind"] == "frame":
            state.scores.append(
                FrameScores(
                    timestamp_ms=int(row["timestamp_ms"]),
                    confidences=np.asarray(row["confidences"], dtype=np.float32),
                )
            )
        if not state.complete():
            return None
        del self._pending[name]
        return FinishedVideo(name, state.metadata_json, state.scores, _first(state.errors))

    def unfinished(self) -> list[str]:
        """Videos with some rows but not all (what an interrupted dataset leaves behind)."""
        return sorted(self._pending)


def _first(errors: list[str]) -> str:
    if not errors:
        return ""
    extra = len(errors) - 1
    return errors[0] + (f" (and {extra} more failed segment(s))" if extra else "")
