"""Helpers for the fault-tolerance tests: classifier test doubles that fail on purpose, finding
(only) the Ray processes a test itself started, killing them by pid, and small colour videos
whose detections are known exactly.

Ray names each segment task `moderate_segment <video name> #<segment>`, and that name is the
busy worker's process title, so a test can tell which job's segment a worker is running.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

from tests.doubles.colour_classifier import ColourTestDoubleClassifier

SEGMENT_TITLE = "ray::moderate_segment "
ACTOR_TITLE = "ray::InferenceActor"
# Four colour sequences of 20 s: different detections per video, changes between samples.
PALETTE = ["red", "white", "blue", "green", "magenta", "black"]


class FailingColourClassifierDouble(ColourTestDoubleClassifier):
    """The colour double, except that any magenta frame makes `classify` raise: an unexpected,
    non-video error inside the pipeline, the same on every attempt."""

    def classify(self, frames: np.ndarray) -> np.ndarray:
        if any(self.dominant_colour(frame) == "magenta" for frame in frames):
            raise RuntimeError("the failing test double refuses magenta frames")
        return super().classify(frames)


class SlowColourClassifierDouble(ColourTestDoubleClassifier):
    """The colour double taking SLOW_CLASSIFY_S per batch: keeps a job in flight for seconds,
    so a test can stop the server while it is surely mid-job."""

    def classify(self, frames: np.ndarray) -> np.ndarray:
        time.sleep(SLOW_CLASSIFY_S)
        return super().classify(frames)


SLOW_CLASSIFY_S = 0.5


def colour_sequence(variant: int, seconds: int = 20) -> list[tuple[str, float]]:
    """A 20 s sequence of 2 s stretches, different for each variant."""
    return [(PALETTE[(variant + 2 * i) % len(PALETTE)], 2.0) for i in range(seconds // 2)]


@dataclass(frozen=True)
class RayProcess:
    pid: int
    title: str


def ray_processes(root_pid: int, title_prefix: str) -> list[RayProcess]:
    """Descendants of `root_pid` (a Ray this test started) whose process title starts so."""
    found = []
    try:
        descendants = psutil.Process(root_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return found
    for process in descendants:
        try:
            title = " ".join(process.cmdline())
        except psutil.Error:
            continue
        if title.startswith(title_prefix):
            found.append(RayProcess(process.pid, title.strip()))
    return found


def session_processes(session_id: int) -> list[int]:
    """Pids in a process session (a server subprocess started with start_new_session)."""
    pids = []
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getsid(process.pid) == session_id and process.status() != psutil.STATUS_ZOMBIE:
                pids.append(process.pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return pids


def kill_pid(pid: int) -> bool:
    """SIGKILL one process we started (by its pid); False if it had already gone."""
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


def store_progress(database: Path) -> dict[str, tuple[int, int, str]]:
    """job_id -> (segments done, segments planned, state), from a server's store.

    Opened read-write (though it only reads): after the server was killed mid-commit, only a
    connection that may write recovers the WAL index, so a read-only one can miss the last
    committed segment.
    """
    connection = sqlite3.connect(database, timeout=10)
    try:
        rows = connection.execute(
            "SELECT j.job_id, COALESCE(SUM(s.done), 0), COUNT(s.seg_index), j.state"
            " FROM jobs j LEFT JOIN segments s ON s.job_id = j.job_id GROUP BY j.job_id"
        ).fetchall()
    finally:
        connection.close()
    return {job_id: (done, total, state) for job_id, done, total, state in rows}
