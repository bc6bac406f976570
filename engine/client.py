"""The notebook client: moderate a video from Python and get GetContentModeration's result.

    from engine.client import moderate, moderate_many, to_dataframe
    result = moderate("s3://videos/clip.mp4")                 # on the connected Ray cluster
    results = moderate_many(["s3://videos/a.mp4", "s3://videos/b.mp4"])  # together, {uri: result}
    result = moderate("s3://videos/clip.mp4", endpoint_url="http://127.0.0.1:8080")  # via a server
    frame = to_dataframe(result)                              # needs pandas (modengine[notebook])

Without `endpoint_url` the video runs on Ray from this process, through the same runner and
result writer as `modengine moderate` (engine/local_runner.py, engine/api/wire.py): the Ray
this process is connected to, else `settings.ray_address`, else a local Ray. With an endpoint,
`Client` speaks the Rekognition API through boto3 (start, poll, page through the result), so it
works against our server and, with the same calls, against Amazon Rekognition.

Either way the result is one dict shaped like a GetContentModeration response with every page's
ModerationLabels merged (no NextToken). This module holds no moderation logic of its own. On
Ray, the runner (model loaded in its inference pool) stays warm between calls with the same
settings; `close()` releases it, as the end of the process does.
"""

from __future__ import annotations

import atexit
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from engine.config import EngineSettings, load_settings
from engine.results.types import AGGREGATIONS, SORT_ORDERS

PANDAS_HINT = "pip install 'modengine[notebook]'  (or: pip install 'pandas>=2.0')"
_PAGE_KEYS_DROPPED = ("NextToken", "ResponseMetadata", "ModerationLabels")


class ModerationJobFailedError(RuntimeError):
    """The server finished the job as FAILED; `status_message` says why (its StatusMessage)."""

    def __init__(self, job_id: str, status_message: str) -> None:
        super().__init__(f"moderation job {job_id} FAILED: {status_message}")
        self.job_id = job_id
        self.status_message = status_message


class ModerationJobTimeoutError(TimeoutError):
    """`wait` gave up while the job was still IN_PROGRESS (the job itself goes on)."""

    def __init__(self, job_id: str, timeout_s: float) -> None:
        super().__init__(f"moderation job {job_id} still IN_PROGRESS after {timeout_s:g} s")
        self.job_id = job_id


class ModerationJobInProgressError(RuntimeError):
    """`results` was asked for a job that has not finished: call `wait` first."""


def moderate(
    uri_or_path: str | Path,
    *,
    min_confidence: float | None = None,
    sort_by: str = "TIMESTAMP",
    aggregate_by: str = "TIMESTAMPS",
    endpoint_url: str | None = None,
    settings: EngineSettings | None = None,
    as_dataframe: bool = False,
    version: str | None = None,
    timeout_s: float = 3600.0,
    adapter: str | None = None,
    **client_options: Any,
):
    """Moderate one video and return the merged GetContentModeration-shaped dict (or, with
    `as_dataframe`, its detections as a pandas DataFrame with the rest in `frame.attrs`).

    `uri_or_path`: `s3://bucket/key` or, without an endpoint, a local file. `min_confidence`
    defaults to 50 (the settings' default_min_confidence). With `endpoint_url` the video must
    already be in an object store that server reads (Rekognition has no upload call: use
    `modengine put` or your S3 tools); `client_options` go to `Client` (region_name,
    aws_access_key_id, aws_secret_access_key, credentials_file, profile_name).
    Without it, `settings` (default: load_settings(), i.e. MODENGINE_* env) pick the model,
    the Ray cluster and the S3 endpoint that `s3://` URIs are read from, and `adapter` (a
    project version ARN a server trained into settings.data_dir) merges that Custom Moderation
    adapter's labels in; the result then names it in ProjectVersion. (A server's jobs use their
    account's adapter instead: `modengine adapters use`.)
    """
    _check_choice("sort_by", sort_by, SORT_ORDERS)
    _check_choice("aggregate_by", aggregate_by, AGGREGATIONS)
    if endpoint_url:
        if adapter is not None:
            raise TypeError("adapter applies on Ray only; a server's jobs use their account's "
                            "adapter (modengine adapters use ARN --account ...)")
        client = Client(endpoint_url, **client_options)
        result = client.moderate(
            uri_or_path, min_confidence=min_confidence, sort_by=sort_by,
            aggregate_by=aggregate_by, version=version, timeout_s=timeout_s,
        )
    else:
        if client_options:
            raise TypeError(f"{sorted(client_options)} apply only with endpoint_url")
        result = moderate_on_ray(
            uri_or_path, settings or load_settings(), version, min_confidence=min_confidence,
            sort_by=sort_by, aggregate_by=aggregate_by, adapter=adapter,
        )
    return to_dataframe(result) if as_dataframe else result


def moderate_many(
    uris_or_paths,
    *,
    max_concurrent: int = 4,
    settings: EngineSettings | None = None,
    **options: Any,
) -> dict[str, dict | Exception]:
    """Moderate several videos at once on Ray: {uri: result, or the exception it raised}.

    Up to `max_concurrent` videos run together through one warm runner, so their segments
    share the cluster and their frames fill the inference pool's batches together (faster
    than one after the other). `options` are `moderate`'s (min_confidence, sort_by,
    aggregate_by, as_dataframe, version, adapter). One video's failure never stops the others.
    """
    if max_concurrent < 1:
        raise ValueError("max_concurrent must be >= 1")
    if "endpoint_url" in options:
        raise TypeError("moderate_many runs on Ray; use Client.start/wait/results for a server")
    settings = settings or load_settings()
    uris = [str(uri) for uri in uris_or_paths]

    def one(uri: str):
        try:
            return moderate(uri, settings=settings, **options)
        except Exception as error:  # noqa: BLE001 - reported per video, as batch results are
            return error

    with ThreadPoolExecutor(max_concurrent, thread_name_prefix="moderate") as pool:
        return dict(zip(uris, pool.map(one, uris)))


def moderate_on_ray(uri_or_path: str | Path, settings: EngineSettings,
                    version: str | None = None, **options: Any) -> dict:
    """Run one video on Ray from this process (as `modengine moderate` does) and shape it.
    `options` are LocalRunner.moderate's (min_confidence, sort_by, aggregate_by, adapter).

    The runner (its Ray connection and its inference pool, with the model loaded) stays warm
    for the next call with the same settings, as a notebook moderates video after video;
    `close()` (or the end of the process) shuts it down.
    """
    from engine.api.wire import moderation_result_to_wire

    source = resolve_source(uri_or_path, settings, version)
    result = _warm_runner(settings).moderate(source, **options)
    response = moderation_result_to_wire(result)
    if str(uri_or_path).startswith("s3://"):  # echoed as the server does; a path has no member
        response["Video"] = {"S3Object": _s3_object(uri_or_path, version)}
    return response


_WARM_RUNNERS: dict[EngineSettings, Any] = {}
_WARM_RUNNERS_LOCK = threading.Lock()


def _warm_runner(settings: EngineSettings):
    """The runner kept for these settings, built on first use."""
    from engine.local_runner import LocalRunner

    with _WARM_RUNNERS_LOCK:
        runner = _WARM_RUNNERS.get(settings)
        if runner is None:
            if not _WARM_RUNNERS:
                atexit.register(close)
            runner = _WARM_RUNNERS[settings] = LocalRunner(settings)
        return runner


def close() -> None:
    """Shut down the warm runners: their inference actors go, and a Ray they started stops
    (a Ray this process connected to itself stays up)."""
    with _WARM_RUNNERS_LOCK:
        runners = list(_WARM_RUNNERS.values())
        _WARM_RUNNERS.clear()
    for runner in runners:
        runner.shutdown()


def resolve_source(uri_or_path: str | Path, settings: EngineSettings, version: str | None = None) -> str:
    """What the decoder opens: a presigned URL for `s3://` (through engine.storage and the
    settings' S3 endpoint, or the embedded store when none is set), else a local file path."""
    text = str(uri_or_path)
    if text.startswith("s3://"):
        from engine.storage import ObjectRef, open_object_store

        bucket, key = split_s3_uri(text)
        ref = ObjectRef(bucket, key, version)
        store = open_object_store(settings)
        store.stat(ref)  # InvalidS3ObjectException names the missing object before Ray starts
        return store.source_for(ref)
    path = Path(text).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no such video file: {text}")
    return str(path.resolve())


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key); ValueError when either part is missing."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise ValueError(f"expected s3://bucket/key, got {uri!r}")
    return bucket, key


class Client:
    """start / wait / results against a Rekognition-compatible endpoint, through boto3.

    Credentials: explicit keys, else `credentials_file` (the server's generated
    `<data-dir>/credentials`, profile `profile_name` or [default]), else boto3's own chain
    (AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE, env keys, ...).
    """

    def __init__(
        self,
        endpoint_url: str | None,
        *,
        region_name: str = "us-east-1",
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        credentials_file: str | Path | None = None,
        profile_name: str | None = None,
        boto_config=None,
    ) -> None:
        import boto3

        if credentials_file and not aws_access_key_id:
            from engine.api.keys import read_profile_key

            key = read_profile_key(Path(credentials_file), profile_name or "default")
            aws_access_key_id, aws_secret_access_key = key.access_key_id, key.secret_access_key
            profile_name = None
        session = boto3.Session(profile_name=profile_name) if profile_name else boto3.Session()
        self.rekognition = session.client(
            "rekognition",
            endpoint_url=endpoint_url,
            region_name=region_name,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            config=boto_config,
        )

    def start(
        self,
        video: str | dict,
        *,
        min_confidence: float | None = None,
        version: str | None = None,
        client_request_token: str | None = None,
        job_tag: str | None = None,
        notification_channel: dict | None = None,
    ) -> str:
        """StartContentModeration for `s3://bucket/key` (or a Video.S3Object dict); the JobId."""
        request: dict[str, Any] = {"Video": {"S3Object": _s3_object(video, version)}}
        optional = {
            "MinConfidence": min_confidence,
            "ClientRequestToken": client_request_token,
            "JobTag": job_tag,
            "NotificationChannel": notification_channel,
        }
        request.update({name: value for name, value in optional.items() if value is not None})
        return self.rekognition.start_content_moderation(**request)["JobId"]

    def wait(self, job_id: str, timeout_s: float = 3600.0, poll_s: float = 1.0) -> str:
        """Poll until the job ends: "SUCCEEDED", or ModerationJobFailedError with the
        StatusMessage, or ModerationJobTimeoutError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            page = self.rekognition.get_content_moderation(JobId=job_id, MaxResults=1)
            status = page["JobStatus"]
            if status == "FAILED":
                raise ModerationJobFailedError(job_id, page.get("StatusMessage", "no StatusMessage"))
            if status != "IN_PROGRESS":
                return status
            if time.monotonic() >= deadline:
                raise ModerationJobTimeoutError(job_id, timeout_s)
            time.sleep(max(0.0, min(poll_s, deadline - time.monotonic())))

    def results(
        self,
        job_id: str,
        *,
        sort_by: str = "TIMESTAMP",
        aggregate_by: str = "TIMESTAMPS",
        page_size: int = 1000,
        as_dataframe: bool = False,
    ):
        """Every page of a finished job merged into one GetContentModeration-shaped dict."""
        _check_choice("sort_by", sort_by, SORT_ORDERS)
        _check_choice("aggregate_by", aggregate_by, AGGREGATIONS)
        request = {"JobId": job_id, "SortBy": sort_by, "AggregateBy": aggregate_by,
                   "MaxResults": page_size}
        pages = [self.rekognition.get_content_moderation(**request)]
        status = pages[0]["JobStatus"]
        if status == "FAILED":
            raise ModerationJobFailedError(job_id, pages[0].get("StatusMessage", "no StatusMessage"))
        if status == "IN_PROGRESS":
            raise ModerationJobInProgressError(f"moderation job {job_id} is IN_PROGRESS: wait() first")
        while pages[-1].get("NextToken"):
            pages.append(
                self.rekognition.get_content_moderation(**request, NextToken=pages[-1]["NextToken"])
            )
        merged = merge_pages(pages)
        return to_dataframe(merged) if as_dataframe else merged

    def moderate(
        self,
        uri: str | Path,
        *,
        min_confidence: float | None = None,
        sort_by: str = "TIMESTAMP",
        aggregate_by: str = "TIMESTAMPS",
        version: str | None = None,
        timeout_s: float = 3600.0,
        poll_s: float = 1.0,
    ) -> dict:
        """start + wait + results for a video the server can read."""
        job_id = self.start(uri, min_confidence=min_confidence, version=version)
        self.wait(job_id, timeout_s=timeout_s, poll_s=poll_s)
        return self.results(job_id, sort_by=sort_by, aggregate_by=aggregate_by)


def merge_pages(pages: list[dict]) -> dict:
    """GetContentModeration pages -> one response: the first page's members (JobStatus,
    VideoMetadata, ...) with every page's ModerationLabels, and no NextToken."""
    merged = {key: value for key, value in pages[0].items() if key not in _PAGE_KEYS_DROPPED}
    merged["ModerationLabels"] = [item for page in pages for item in page.get("ModerationLabels", [])]
    return merged


def to_dataframe(result: dict):
    """A result's detections as a flat pandas DataFrame: Timestamp, Name, ParentName,
    TaxonomyLevel, Confidence (+ StartTimestampMillis, EndTimestampMillis, DurationMillis in
    SEGMENTS mode), one row per detection in the result's order. The other members of the
    result (VideoMetadata, JobStatus, ...) are kept in `frame.attrs`."""
    try:
        import pandas as pd
    except ImportError as error:
        raise ImportError(f"DataFrames need pandas, which is not installed: {PANDAS_HINT}") from error
    from engine.api.wire import DETECTION_COLUMNS, SEGMENT_COLUMNS, detection_row

    labels = result.get("ModerationLabels", [])
    segments = result.get("GetRequestMetadata", {}).get("AggregateBy") == "SEGMENTS" or any(
        SEGMENT_COLUMNS[0] in item for item in labels
    )
    types = ("int64", "object", "object", "int64", "float64")
    columns = dict(zip(DETECTION_COLUMNS, types))
    if segments:
        columns |= dict.fromkeys(SEGMENT_COLUMNS, "int64")
    rows = [detection_row(item, segments) for item in labels]
    frame = pd.DataFrame(rows, columns=list(columns)).astype(columns)
    frame.attrs = {key: value for key, value in result.items() if key != "ModerationLabels"}
    return frame


def _s3_object(video: str | Path | dict, version: str | None) -> dict:
    if isinstance(video, dict):
        return dict(video.get("S3Object", video))
    text = str(video)
    if not text.startswith("s3://"):
        raise ValueError(
            f"{text!r} is not an s3://bucket/key URI. A server reads videos from its object "
            "store, and the Rekognition API has no upload call: put the file there first "
            "(`modengine put FILE BUCKET/KEY` for the embedded store, or your S3 tools), or "
            "call moderate() without endpoint_url to run it on Ray from this process."
        )
    bucket, key = split_s3_uri(text)
    return {"Bucket": bucket, "Name": key} | ({"Version": version} if version else {})


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
