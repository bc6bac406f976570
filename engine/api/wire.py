"""The AWS wire shapes (PascalCase), written in this one place.

Everything below engine/api deals in dataclasses: `Detection`, `VideoMetadata`,
`ModerationResult` (engine/results), `ResultPage` and `ImageModeration` (engine/jobs). This
module turns them into the JSON the server answers with, and the CLI, the notebook client and
batch print or store the very same documents through `moderation_result_to_wire`. A member
added to a detection or a result (ContentTypes, say) is a field on its dataclass plus one line
here.

It also reads the one wire shape our own clients consume (`detection_row`), so a caller of the
server (engine/client.py, engine/demo.py) never spells the wire's member names itself.
Knows nothing about HTTP, Ray or PyAV.
"""

from __future__ import annotations

from engine.jobs.types import ImageModeration, ResultPage
from engine.results.types import ContentType, Detection, ModerationResult
from engine.video.types import VideoMetadata

CONFIDENCE_DIGITS = 4
"""Confidences are written rounded to this many decimals."""


def confidence_to_wire(confidence: float) -> float:
    return round(float(confidence), CONFIDENCE_DIGITS)


def moderation_label_to_wire(detection: Detection) -> dict:
    """A ModerationLabel: {Confidence, Name, ParentName, TaxonomyLevel}."""
    return {
        "Confidence": confidence_to_wire(detection.confidence),
        "Name": detection.name,
        "ParentName": detection.parent_name,
        "TaxonomyLevel": detection.level,
    }


def content_types_to_wire(content_types: tuple[ContentType, ...]) -> list[dict]:
    """ContentTypes: [{Confidence, Name}], as Rekognition returns them."""
    return [{"Confidence": confidence_to_wire(content_type.confidence), "Name": content_type.name}
            for content_type in content_types]


def detection_to_wire(detection: Detection) -> dict:
    """A ContentModerationDetection; SEGMENTS detections add their stretch. ContentTypes is on
    every detection (an empty list when its frame is neither animated nor illustrated)."""
    item: dict = {
        "Timestamp": detection.timestamp_ms,
        "ModerationLabel": moderation_label_to_wire(detection),
    }
    if detection.start_ms is not None and detection.end_ms is not None:
        item["StartTimestampMillis"] = detection.start_ms
        item["EndTimestampMillis"] = detection.end_ms
        item["DurationMillis"] = detection.end_ms - detection.start_ms
    item["ContentTypes"] = content_types_to_wire(detection.content_types)
    return item


def video_metadata_to_wire(metadata: VideoMetadata) -> dict:
    return {
        "Codec": metadata.codec,
        "DurationMillis": metadata.duration_ms,
        "Format": metadata.format,
        "FrameRate": metadata.frame_rate,
        "FrameHeight": metadata.frame_height,
        "FrameWidth": metadata.frame_width,
        "ColorRange": metadata.color_range,
    }


def request_metadata_to_wire(sort_by: str, aggregate_by: str) -> dict:
    return {"SortBy": sort_by, "AggregateBy": aggregate_by}


def moderation_result_to_wire(result: ModerationResult) -> dict:
    """A single unpaged GetContentModeration response for a finished video (the CLI's
    `--json`, the notebook client on Ray, a batch result document)."""
    options = result.options
    return {
        "JobStatus": "SUCCEEDED",
        "VideoMetadata": video_metadata_to_wire(result.metadata),
        "ModerationLabels": [detection_to_wire(d) for d in result.detections],
        "ModerationModelVersion": result.model_version,
        "GetRequestMetadata": request_metadata_to_wire(options.sort_by, options.aggregate_by),
        "ModelInfo": {"Name": result.model_info.name, "Version": result.model_info.version},
        # Not a Rekognition member (boto3 ignores it): how the sampled frames were picked.
        "DecodeMode": result.decode_mode,
    }


def result_page_to_wire(page: ResultPage) -> dict:
    """One GetContentModeration page of a stored job."""
    job = page.job
    s3_object = {"Bucket": job.video.bucket, "Name": job.video.key}
    if job.video.version:
        s3_object["Version"] = job.video.version
    response: dict = {"JobStatus": job.state.wire_status}
    if job.status_message:
        response["StatusMessage"] = job.status_message
    if job.metadata is not None:
        response["VideoMetadata"] = video_metadata_to_wire(job.metadata)
    response["ModerationLabels"] = [detection_to_wire(d) for d in page.detections]
    if page.next_token:
        response["NextToken"] = page.next_token
    response["ModerationModelVersion"] = job.model_version
    response["JobId"] = job.job_id
    response["Video"] = {"S3Object": s3_object}
    if job.job_tag:
        response["JobTag"] = job.job_tag
    response["GetRequestMetadata"] = request_metadata_to_wire(page.sort_by, page.aggregate_by)
    return response


def image_moderation_to_wire(moderation: ImageModeration) -> dict:
    """DetectModerationLabels' response."""
    return {
        "ModerationLabels": [moderation_label_to_wire(label) for label in moderation.labels],
        "ModerationModelVersion": moderation.model_version,
        "ContentTypes": content_types_to_wire(moderation.content_types),
    }


# -- reading (for our own clients of the server) --------------------------------------------

DETECTION_COLUMNS = ("Timestamp", "Name", "ParentName", "TaxonomyLevel", "Confidence")
SEGMENT_COLUMNS = ("StartTimestampMillis", "EndTimestampMillis", "DurationMillis")


def detection_row(item: dict, segments: bool = False) -> tuple:
    """A ContentModerationDetection as a flat row of DETECTION_COLUMNS (+ SEGMENT_COLUMNS)."""
    label = item["ModerationLabel"]
    row = (item["Timestamp"], label["Name"], label["ParentName"], label["TaxonomyLevel"],
           label["Confidence"])
    if segments:
        row += tuple(item[column] for column in SEGMENT_COLUMNS)
    return row
