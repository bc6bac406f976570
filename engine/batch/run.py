"""One batch: list the videos, skip those already done, moderate the rest with Ray Data, write
one GetContentModeration-shaped JSON per video and a summary.

Resuming: each result carries a `Batch` member (the video's URI, ETag and size, and the request:
MinConfidence, SortBy, AggregateBy, sampling, decode mode, model). A video is skipped when its
result exists and that member matches what this run would write; a changed video (new ETag or
size, e.g. overwritten) or a changed request is done again, and `redo` forces everything.
Failed videos get no result file, so the next run tries them again. Results are written as
each video finishes, so an interrupted batch keeps what it finished.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import ray

from engine.api.wire import adapter_to_wire, moderation_result_to_wire
from engine.batch.collect import FinishedVideo, VideoCollector
from engine.batch.locations import Location, StoredFile, is_video_name, open_location
from engine.batch.stages import (
    BatchClassifier,
    decode_rows,
    describe_model,
    metadata_from_json,
    plan_video,
)
from engine.cluster import actor_placement, describe_exception, local_adapter_path
from engine.config import EngineSettings
from engine.errors import InvalidS3ObjectException
from engine.local_runner import result_options
from engine.results import assemble_result, segment_detections

log = logging.getLogger(__name__)

SUMMARY_NAME = "summary.json"
RESULT_SUFFIX = ".json"
Reporter = Callable[[str], None]


@dataclass(frozen=True)
class BatchRequest:
    """What to moderate, where to write, and the GetContentModeration parameters."""

    input_uri: str
    output_uri: str
    min_confidence: float = 50.0
    sort_by: str = "TIMESTAMP"
    aggregate_by: str = "TIMESTAMPS"
    redo: bool = False
    adapter: str | None = None
    """A Custom Moderation adapter (project version ARN) trained into settings.data_dir."""


def result_name(video_name: str) -> str:
    return video_name + RESULT_SUFFIX


def run_batch(
    settings: EngineSettings,
    request: BatchRequest,
    report: Reporter = print,
    connect: Callable[[], object] | None = None,
) -> dict:
    """Run the batch on Ray; returns the summary it wrote. `connect` is called only when some
    video needs moderating (so a batch with nothing to do never starts Ray); without it the
    Ray this process is connected to is used.

    A video that cannot be moderated becomes a FAILED entry; if the dataset itself breaks,
    the summary is still written (the unfinished videos FAILED) and the error re-raised.
    """
    started = time.time()
    adapter_path = local_adapter_path(settings.data_dir, request.adapter)  # before any work
    inputs = open_location(request.input_uri, settings)
    outputs = open_location(request.output_uri, settings)
    listed = inputs.list_files()  # a missing input folder or bucket raises
    videos = [item for item in listed if is_video_name(item.name)]
    stored = {item.name for item in _list_if_any(outputs)}
    entries: dict[str, dict] = {}
    todo: list[tuple[StoredFile, dict]] = []
    for video in videos:
        stamp = batch_stamp(inputs, video, request, settings)
        if not request.redo and _stored_stamp(outputs, result_name(video.name), stored) == stamp:
            entries[video.name] = _entry(inputs, outputs, video.name, "SKIPPED")
        else:
            todo.append((video, stamp))
    report(f"batch: {len(videos)} video(s) under {inputs.uri}: {len(entries)} already done, "
           f"{len(todo)} to moderate")
    model: dict | None = None
    try:
        if todo:
            if connect is not None:
                connect()
            model = _moderate(todo, inputs, outputs, settings, request, entries, report,
                              adapter_path)
    finally:
        summary = _summary(inputs, outputs, request, settings, entries, started, model,
                           not_videos=len(listed) - len(videos))
        outputs.write(SUMMARY_NAME, json.dumps(summary, indent=2).encode())
    counts = summary["Counts"]
    report(f"batch: done in {summary['ElapsedSeconds']:.1f} s: {counts['Succeeded']} succeeded, "
           f"{counts['Skipped']} skipped, {counts['Failed']} failed; summary at "
           f"{outputs.uri_of(SUMMARY_NAME)}")
    return summary


def batch_stamp(inputs: Location, video: StoredFile, request: BatchRequest,
                settings: EngineSettings) -> dict:
    """What a result must record to count as done for this video and this request."""
    return {
        "Source": {"Uri": inputs.uri_of(video.name), "ETag": video.etag,
                   "SizeBytes": video.size_bytes},
        "Request": {
            "MinConfidence": float(request.min_confidence),
            "SortBy": request.sort_by,
            "AggregateBy": request.aggregate_by,
            "SampleIntervalMillis": settings.sample_interval_ms,
            "DecodeMode": settings.decode_mode,
            "Model": settings.model,
            "ModerationModelVersion": settings.model_version,
        } | adapter_to_wire(request.adapter),
    }


def build_dataset(items: list[dict], settings: EngineSettings, input_size: tuple[int, int],
                  adapter_path: str | None = None):
    """videos -> segments (probe + plan) -> one block per segment -> sampled frames ->
    confidences from a pool of classifier actors (one per GPU, else settings.inference_actors)."""
    import ray.data

    count, resources = actor_placement(settings, ray.cluster_resources())
    dataset = ray.data.from_items(items, override_num_blocks=len(items))
    dataset = dataset.flat_map(plan_video, fn_kwargs={"settings": settings},
                               num_cpus=settings.segment_task_cpus)
    # Streaming split into one segment per block, so one video's segments decode in parallel.
    dataset = dataset.repartition(target_num_rows_per_block=1)
    dataset = dataset.flat_map(
        decode_rows, fn_kwargs={"settings": settings, "input_size": tuple(input_size)},
        num_cpus=settings.segment_task_cpus,
    )
    return dataset.map_batches(
        BatchClassifier,
        fn_constructor_kwargs={"settings": settings, "adapter_path": adapter_path},
        batch_size=settings.max_batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=count),
        **resources,
    )


def _moderate(todo, inputs: Location, outputs: Location, settings: EngineSettings,
              request: BatchRequest, entries: dict, report: Reporter,
              adapter_path: str | None) -> dict:
    taxonomy, model_info = ray.get(ray.remote(describe_model).options(num_cpus=0).remote(
        settings, adapter_path))
    stamps = {video.name: stamp for video, stamp in todo}
    items = [{"video": video.name, "location": inputs.uri} for video, _ in todo]
    collector = VideoCollector()
    try:
        for row in build_dataset(items, settings, model_info.input_size,
                                 adapter_path).iter_rows():
            finished = collector.add(row)
            if finished is None:
                continue
            entries[finished.video] = _finish(finished, stamps[finished.video], inputs, outputs,
                                              settings, request, taxonomy, model_info)
            done = sum(1 for name in stamps if name in entries)
            report(f"[{done}/{len(stamps)}] {_describe_entry(entries[finished.video])}")
    except Exception as error:
        message = f"The batch stopped before this video finished: {describe_exception(error)}"
        for name in stamps:
            entries.setdefault(name, _entry(inputs, outputs, name, "FAILED", StatusMessage=message))
        raise
    return {"Name": model_info.name, "Version": model_info.version}


def _finish(finished: FinishedVideo, stamp: dict, inputs: Location, outputs: Location,
            settings: EngineSettings, request: BatchRequest, taxonomy, model_info) -> dict:
    """Write one video's result document; returns its summary entry."""
    if finished.failed:
        return _entry(inputs, outputs, finished.video, "FAILED", StatusMessage=finished.error)
    scores = finished.scores
    options = result_options(settings, request.min_confidence, request.sort_by,
                             request.aggregate_by)
    frames = segment_detections(
        taxonomy, [frame.timestamp_ms for frame in scores],
        [frame.confidences for frame in scores], options.min_confidence,
        model_info.content_types,
    )
    result = assemble_result(
        [frames], metadata_from_json(finished.metadata_json), options,
        model_version=settings.model_version, model_info=model_info,
        decode_mode=settings.decode_mode, adapter=request.adapter,
    )
    response = moderation_result_to_wire(result)
    response["Batch"] = stamp
    try:
        outputs.write(result_name(finished.video), json.dumps(response, indent=1).encode())
    except Exception as error:  # noqa: BLE001 - an unwritable result fails this video only
        return _entry(inputs, outputs, finished.video, "FAILED",
                      StatusMessage=f"The result could not be written: {describe_exception(error)}")
    return _entry(inputs, outputs, finished.video, "SUCCEEDED",
                  Labels=len(result.detections),
                  DurationMillis=result.metadata.duration_ms, Frames=result.frame_count)


def _list_if_any(outputs: Location) -> list[StoredFile]:
    """An output folder or bucket that does not exist yet holds no results (writing creates it)."""
    try:
        return outputs.list_files()
    except (FileNotFoundError, InvalidS3ObjectException):
        return []


def _stored_stamp(outputs: Location, name: str, stored: set[str]) -> dict | None:
    if name not in stored:
        return None
    try:
        return json.loads(outputs.read(name)).get("Batch")
    except (OSError, ValueError, AttributeError) as error:
        log.warning("re-doing %s: its stored result is unreadable (%s)", name, error)
        return None


def _entry(inputs: Location, outputs: Location, name: str, status: str, **details) -> dict:
    entry = {"Video": name, "Uri": inputs.uri_of(name), "Status": status}
    if status != "FAILED":
        entry["Result"] = outputs.uri_of(result_name(name))
    return entry | details


def _describe_entry(entry: dict) -> str:
    if entry["Status"] == "FAILED":
        return f"FAILED {entry['Video']}: {entry['StatusMessage']}"
    return (f"SUCCEEDED {entry['Video']}: {entry['Labels']} label(s) over "
            f"{entry['DurationMillis'] / 1000:.1f} s of video -> {entry['Result']}")


def _summary(inputs, outputs, request: BatchRequest, settings: EngineSettings, entries: dict,
             started: float, model: dict | None, not_videos: int) -> dict:
    ordered = [entries[name] for name in sorted(entries)]
    statuses = [entry["Status"] for entry in ordered]
    return {
        "Input": inputs.uri,
        "Output": outputs.uri,
        "StartedAt": _iso(started),
        "FinishedAt": _iso(time.time()),
        "ElapsedSeconds": round(time.time() - started, 3),
        "Request": {"MinConfidence": request.min_confidence, "SortBy": request.sort_by,
                    "AggregateBy": request.aggregate_by, "Redo": request.redo}
        | adapter_to_wire(request.adapter),
        "ModerationModelVersion": settings.model_version,
        "Model": model,
        "Counts": {
            "Videos": len(ordered),
            "Succeeded": statuses.count("SUCCEEDED"),
            "Skipped": statuses.count("SKIPPED"),
            "Failed": statuses.count("FAILED"),
            "NotVideos": not_videos,
        },
        "Videos": ordered,
    }


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).isoformat(timespec="seconds")
