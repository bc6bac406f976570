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

from engine.jobs.adapter_types import ProjectRecord, VersionRecord
from engine.jobs.media_types import MediaAnalysisRecord
from engine.jobs.types import ImageModeration, ResultPage
from engine.results.types import ContentType, Detection, ModerationResult
from engine.storage.base import ObjectRef
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
    } | adapter_to_wire(result.adapter)


def adapter_to_wire(arn: str | None) -> dict:
    """Beyond Rekognition on video results: the adapter the frames were scored with, named as
    DetectModerationLabels echoes it (ProjectVersion); nothing without one."""
    return {"ProjectVersion": arn} if arn else {}


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
    return response | adapter_to_wire(job.adapter_arn)


def image_moderation_to_wire(moderation: ImageModeration) -> dict:
    """DetectModerationLabels' response (ProjectVersion echoed when an adapter was used)."""
    response = {
        "ModerationLabels": [moderation_label_to_wire(label) for label in moderation.labels],
        "ModerationModelVersion": moderation.model_version,
        "ContentTypes": content_types_to_wire(moderation.content_types),
    }
    if moderation.project_version:
        response["ProjectVersion"] = moderation.project_version
    return response


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


# -- Custom Moderation adapters -----------------------------------------------------------------


def epoch_seconds(milliseconds: int | None) -> float | None:
    """A DateTime member: JSON 1.1 carries timestamps as epoch seconds."""
    return None if milliseconds is None else milliseconds / 1000.0


def s3_object_to_wire(ref: ObjectRef) -> dict:
    item = {"Bucket": ref.bucket, "Name": ref.key}
    if ref.version:
        item["Version"] = ref.version
    return item


def _assets(refs) -> list[dict]:
    return [{"GroundTruthManifest": {"S3Object": s3_object_to_wire(ref)}} for ref in refs]


def project_to_wire(project: ProjectRecord) -> dict:
    """A ProjectDescription."""
    return {
        "ProjectArn": project.arn,
        "CreationTimestamp": epoch_seconds(project.created_ms),
        "Status": project.status,
        "Datasets": [],
        "Feature": project.feature,
        "AutoUpdate": project.auto_update,
    }


def project_version_to_wire(version: VersionRecord) -> dict:
    """A ProjectVersionDescription."""
    request = version.request
    item: dict = {
        "ProjectVersionArn": version.arn,
        "CreationTimestamp": epoch_seconds(version.created_ms),
        "Status": version.status.value,
    }
    if version.status_message:
        item["StatusMessage"] = version.status_message
    if version.training_end_ms is not None:
        item["TrainingEndTimestamp"] = epoch_seconds(version.training_end_ms)
        item["BillableTrainingTimeInSeconds"] = max(
            0, (version.training_end_ms - version.created_ms) // 1000)
    output = {"S3Bucket": request.output_bucket}
    if request.output_prefix:
        output["S3KeyPrefix"] = request.output_prefix
    item["OutputConfig"] = output
    evaluation = version.evaluation
    training_input = {"Assets": _assets(request.training_manifests)}
    training = {"Input": training_input}
    testing_input: dict = {"Assets": _assets(request.testing_manifests)}
    if request.auto_create_testing:
        testing_input["AutoCreate"] = True
    testing: dict = {"Input": testing_input}
    if evaluation is not None:
        training["Output"] = {"Assets": _assets(
            [evaluation.training_manifest] if evaluation.training_manifest
            else request.training_manifests)}
        testing["Output"] = {"Assets": _assets(
            [evaluation.testing_manifest] if evaluation.testing_manifest
            else request.testing_manifests)}
        item["EvaluationResult"] = {
            "F1Score": round(float(evaluation.f1), 6),
            "Summary": {"S3Object": s3_object_to_wire(evaluation.summary)},
        }
    item["TrainingDataResult"] = training
    item["TestingDataResult"] = testing
    if request.kms_key_id:
        item["KmsKeyId"] = request.kms_key_id
    if request.description:
        item["VersionDescription"] = request.description
    item["Feature"] = "CONTENT_MODERATION"
    item["BaseModelVersion"] = version.base_model_version
    item["FeatureConfig"] = {"ContentModeration": {
        "ConfidenceThreshold": version.confidence_threshold}}
    return item


# -- media analysis jobs ---------------------------------------------------------------------------


def media_analysis_job_to_wire(job: MediaAnalysisRecord) -> dict:
    """A MediaAnalysisJobDescription (GetMediaAnalysisJob's response has the same members)."""
    request = job.request
    moderation: dict = {}
    if request.min_confidence is not None:
        moderation["MinConfidence"] = request.min_confidence
    if request.project_version:
        moderation["ProjectVersion"] = request.project_version
    output = {"S3Bucket": request.output_bucket}
    if request.output_prefix:
        output["S3KeyPrefix"] = request.output_prefix
    item: dict = {"JobId": job.job_id}
    if request.job_name:
        item["JobName"] = request.job_name
    item["OperationsConfig"] = {"DetectModerationLabels": moderation}
    item["Status"] = job.status.value
    if job.failure_code is not None:
        item["FailureDetails"] = {"Code": job.failure_code.value,
                                  "Message": job.failure_message or ""}
    item["CreationTimestamp"] = epoch_seconds(job.created_ms)
    if job.completed_ms is not None:
        item["CompletionTimestamp"] = epoch_seconds(job.completed_ms)
    item["Input"] = {"S3Object": s3_object_to_wire(request.manifest)}
    item["OutputConfig"] = output
    if request.kms_key_id:
        item["KmsKeyId"] = request.kms_key_id
    outputs = job.outputs
    if outputs is not None:
        if outputs.results is not None:
            item["Results"] = {"S3Object": s3_object_to_wire(outputs.results),
                               "ModelVersions": {"Moderation": outputs.model_version}}
        item["ManifestSummary"] = {"S3Object": s3_object_to_wire(outputs.summary)}
    return item
