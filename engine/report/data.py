"""What one report shows, read from the job store: the job, its stored rows and its samples.

The SEGMENTS and TIMESTAMPS rows are read with the same store call GetContentModeration pages
through (`JobStore.read_results`, TIMESTAMP order), so the report's table is exactly what a
client receives; nothing is recomputed. The sampled timestamps (kept per segment) are the
timeline's x axis: a sample without a stored row for a label was below MinConfidence.
Knows nothing about HTTP, Ray or decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.jobs.store import JobStore
from engine.jobs.types import JobRecord, JobState
from engine.results.types import Detection

_READ_PAGE_ROWS = 1000
"""Rows per store read, as GetContentModeration's largest page."""


@dataclass(frozen=True)
class ReportData:
    """Everything a report page needs, already read from the store."""

    job: JobRecord
    decode_mode: str
    sample_interval_ms: int
    segments: list[Detection]
    """SEGMENTS rows in TIMESTAMP order (the GetContentModeration default)."""
    detections: list[Detection]
    """TIMESTAMPS rows in TIMESTAMP order: every stored detection."""
    sample_timestamps_ms: list[int]
    """Every sampled frame's timestamp, ascending (detected or not)."""
    segments_done: int
    segments_planned: int

    @property
    def succeeded(self) -> bool:
        return self.job.state is JobState.SUCCEEDED


def load_report_data(
    store: JobStore, job: JobRecord, decode_mode: str, sample_interval_ms: int
) -> ReportData:
    """Read the rows of a job; a job that has not succeeded has none (only its progress)."""
    done, planned = store.segment_progress(job.job_id)
    segments: list[Detection] = []
    detections: list[Detection] = []
    samples: list[int] = []
    if job.state is JobState.SUCCEEDED:
        segments = read_all_results(store, job.job_id, "SEGMENTS")
        detections = read_all_results(store, job.job_id, "TIMESTAMPS")
        samples = store.sample_timestamps(job.job_id)
    return ReportData(
        job=job,
        decode_mode=decode_mode,
        sample_interval_ms=sample_interval_ms,
        segments=segments,
        detections=detections,
        sample_timestamps_ms=samples,
        segments_done=done,
        segments_planned=planned,
    )


def read_all_results(store: JobStore, job_id: str, aggregate_by: str) -> list[Detection]:
    """Every stored row of one aggregation in TIMESTAMP order, page by page."""
    rows: list[Detection] = []
    while True:
        page = store.read_results(job_id, aggregate_by, "TIMESTAMP", len(rows), _READ_PAGE_ROWS)
        rows.extend(page)
        if len(page) < _READ_PAGE_ROWS:
            return rows
