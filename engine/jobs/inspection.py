"""`modengine jobs`: list and inspect the jobs in a data directory's job store, for operators.

Reads the SQLite store directly (WAL lets a reader in while a server writes), so it works
whether or not a server runs, and never goes through the API (no keys needed: whoever can read
the data directory can read the store anyway). Builds plain dicts (the `--json` output) and
renders them as text; engine/cli.py only parses arguments. Knows nothing about HTTP or Ray.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from engine.jobs import DATABASE_FILE
from engine.jobs.store import JobStore
from engine.jobs.types import JobRecord, JobState


class NoJobStoreError(FileNotFoundError):
    """The data directory has no job store (no server has used it yet)."""


def open_store(data_dir: Path) -> JobStore:
    """The job store under `data_dir`, refusing to create one where none exists."""
    path = Path(data_dir) / DATABASE_FILE
    if not path.is_file():
        raise NoJobStoreError(f"no job store at {path} (is --data-dir the server's data directory?)")
    return JobStore(path)


def list_jobs(store: JobStore, state: str | None = None, limit: int = 50) -> list[dict]:
    """The newest `limit` jobs (of one state, if given) as summaries, newest first."""
    records = store.list_jobs(JobState(state) if state else None, limit)
    return [summarise(store, record) for record in records]


def summarise(store: JobStore, job: JobRecord, at_ms: int | None = None) -> dict:
    """One line's worth: id, state, when, how long, which object, progress, detections."""
    done, planned = store.segment_progress(job.job_id)
    return {
        "job_id": job.job_id,
        "state": job.state.value,
        "created": iso_time(job.created_ms),
        "duration_s": duration_s(job, at_ms),
        "object": object_uri(job),
        "segments_done": done,
        "segments_total": planned,
        "detections": store.detection_count(job.job_id),
    }


def job_details(store: JobStore, job_id: str) -> dict | None:
    """Everything the store holds about one job, or None when there is no such job."""
    job = store.get_job(job_id)
    if job is None:
        return None
    channel = job.notification_channel
    return {
        **summarise(store, job),
        "account": job.account,
        "status_message": job.status_message,
        "finished": iso_time(job.finished_ms) if job.finished_ms else None,
        "model_version": job.model_version,
        "decode_mode": job.decode_mode,
        "adapter": job.adapter_arn,
        "request": {
            "video": {"bucket": job.video.bucket, "key": job.video.key,
                      "version": job.video.version},
            "min_confidence": job.min_confidence,
            "client_request_token": job.client_request_token,
            "notification_channel": asdict(channel) if channel else None,
            "job_tag": job.job_tag,
        },
        "metadata": asdict(job.metadata) if job.metadata else None,
        "segments": store.segment_rows(job_id),
        "notification_attempts": [
            {**attempt, "succeeded": bool(attempt["succeeded"]), "at": iso_time(attempt["at_ms"])}
            for attempt in store.notification_attempts(job_id)
        ],
    }


def iso_time(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, timezone.utc).isoformat(timespec="seconds")


def duration_s(job: JobRecord, at_ms: int | None = None) -> float:
    """Run time so far: creation to finish, or to now while the job is still active."""
    end_ms = job.finished_ms or at_ms or int(time.time() * 1000)
    return round(max(0, end_ms - job.created_ms) / 1000, 1)


def object_uri(job: JobRecord) -> str:
    version = f"?versionId={job.video.version}" if job.video.version else ""
    return f"s3://{job.video.bucket}/{job.video.key}{version}"


# -- text rendering -------------------------------------------------------------------------

_LIST_COLUMNS = ("JOB ID", "STATE", "CREATED (UTC)", "DURATION", "PROGRESS", "DETECTIONS", "OBJECT")


def render_list(summaries: list[dict]) -> str:
    """An aligned table, one job per line; a sentence when there are none."""
    if not summaries:
        return "no jobs"
    rows = [_LIST_COLUMNS] + [
        (
            s["job_id"], s["state"], s["created"].replace("+00:00", ""),
            format_duration(s["duration_s"]), f"{s['segments_done']}/{s['segments_total']}",
            str(s["detections"]), s["object"],
        )
        for s in summaries
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(_LIST_COLUMNS) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1]
        for row in rows
    )


def render_details(details: dict) -> str:
    """Key: value lines, then the segments and the notification attempts as small tables."""
    request = details["request"]
    channel = request["notification_channel"]
    lines = [
        f"Job:             {details['job_id']}",
        f"State:           {details['state']}",
        f"Status message:  {details['status_message'] or '-'}",
        f"Account:         {details['account']}",
        f"Object:          {details['object']}",
        f"Created:         {details['created']}",
        f"Finished:        {details['finished'] or '-'}",
        f"Duration:        {format_duration(details['duration_s'])}",
        f"MinConfidence:   {request['min_confidence']:g}",
        f"Request token:   {request['client_request_token'] or '-'}",
        f"Job tag:         {request['job_tag'] or '-'}",
        f"Notification:    {channel['sns_topic_arn'] if channel else '-'}",
        f"Model version:   {details['model_version']}",
        f"Decode mode:     {details['decode_mode']}",
        f"Adapter:         {details.get('adapter') or '-'}",
        (f"Progress:        {details['segments_done']}/{details['segments_total']} segments, "
         f"{details['detections']} detections"),
    ]
    metadata = details["metadata"]
    if metadata:
        lines.append("Video:           " + ", ".join(f"{k}={v}" for k, v in metadata.items()))
    lines.append("")
    lines.append("Segments:" if details["segments"] else "Segments: none planned yet")
    for segment in details["segments"]:
        lines.append(
            f"  #{segment['index']:<4} {segment['start_ms']:>9} - {segment['stop_ms']:<9} ms  "
            f"{'done' if segment['done'] else 'pending':<8} {segment['samples']} samples"
        )
    attempts = details["notification_attempts"]
    lines.append("Notification attempts:" if attempts else "Notification attempts: none")
    for attempt in attempts:
        lines.append(
            f"  {attempt['at']}  #{attempt['attempt']} {attempt['target']}  "
            f"{'ok' if attempt['succeeded'] else 'failed'}  {attempt['detail'] or ''}".rstrip()
        )
    return "\n".join(lines)


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"
