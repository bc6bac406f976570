"""The operations we serve: wire body (validated dict) -> jobs request -> wire response dict.

Requests are read here and answers written by engine/api/wire.py: PascalCase stays in
engine/api, the jobs layer gets and returns dataclasses. Each handler shares its snake_case
name with the jobs service method it calls.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from engine.api.auth import Caller
from engine.api.wire import (
    image_moderation_to_wire,
    media_analysis_job_to_wire,
    project_to_wire,
    project_version_to_wire,
    result_page_to_wire,
)
from engine.errors import InternalServerError, InvalidParameterException
from engine.jobs import (
    AdapterService,
    GetRequest,
    MediaAnalysisService,
    ModerationService,
    NotificationChannel,
    StartRequest,
)
from engine.jobs.adapter_types import VersionRequest
from engine.jobs.media_types import MediaAnalysisRequest
from engine.jobs.service import MAX_PAGE_SIZE
from engine.storage.base import ObjectRef

Handler = Callable[[ModerationService, Caller, dict, float], dict]


def start_content_moderation(
    service: ModerationService, caller: Caller, body: dict, default_min_confidence: float
) -> dict:
    s3_object = (body.get("Video") or {}).get("S3Object")
    if not s3_object or "Bucket" not in s3_object or "Name" not in s3_object:
        raise InvalidParameterException("Video.S3Object with Bucket and Name is required")
    channel = body.get("NotificationChannel")
    request = StartRequest(
        video=ObjectRef(s3_object["Bucket"], s3_object["Name"], s3_object.get("Version")),
        min_confidence=float(body.get("MinConfidence", default_min_confidence)),
        client_request_token=body.get("ClientRequestToken"),
        notification_channel=NotificationChannel(channel["SNSTopicArn"], channel["RoleArn"])
        if channel
        else None,
        job_tag=body.get("JobTag"),
    )
    return {"JobId": service.start_content_moderation(caller.account, request)}


def get_content_moderation(
    service: ModerationService, caller: Caller, body: dict, default_min_confidence: float
) -> dict:
    request = GetRequest(
        job_id=body["JobId"],
        max_results=min(int(body.get("MaxResults", MAX_PAGE_SIZE)), MAX_PAGE_SIZE),
        next_token=body.get("NextToken"),
        sort_by=body.get("SortBy", "TIMESTAMP"),
        aggregate_by=body.get("AggregateBy", "TIMESTAMPS"),
    )
    return result_page_to_wire(service.get_content_moderation(caller.account, request))


def detect_moderation_labels(
    service: ModerationService, caller: Caller, body: dict, default_min_confidence: float
) -> dict:
    if "HumanLoopConfig" in body:
        raise InvalidParameterException(
            "HumanLoopConfig is not supported: this service has no Amazon Augmented AI human "
            "review; call without it"
        )
    moderation = service.detect_moderation_labels(
        caller.account,
        image_of(body["Image"]),
        float(body.get("MinConfidence", default_min_confidence)),
        body.get("ProjectVersion"),
    )
    return image_moderation_to_wire(moderation)


def image_of(image: dict) -> bytes | ObjectRef:
    """Image.Bytes (base64 text in AWS JSON 1.1) decoded, or Image.S3Object; exactly one."""
    if ("Bytes" in image) == ("S3Object" in image):
        raise InvalidParameterException("Image must have exactly one of Bytes and S3Object")
    if "S3Object" in image:
        s3_object = image["S3Object"]
        if "Bucket" not in s3_object or "Name" not in s3_object:
            raise InvalidParameterException("Image.S3Object with Bucket and Name is required")
        return ObjectRef(s3_object["Bucket"], s3_object["Name"], s3_object.get("Version"))
    encoded = image["Bytes"]
    if not isinstance(encoded, str):
        raise InvalidParameterException("Image.Bytes must be a base64-encoded string")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameterException("Image.Bytes is not valid base64") from None
    if not data:
        raise InvalidParameterException("Image.Bytes length must be >= 1, got an empty image")
    return data


# -- Custom Moderation adapters -------------------------------------------------------------

PAGE_SIZE = 100
"""DescribeProjects / DescribeProjectVersions: the largest and default MaxResults."""


def adapters_of(service: ModerationService) -> AdapterService:
    if service.adapters is None:
        raise InternalServerError("Custom Moderation adapters are not configured on this server")
    return service.adapters


def create_project(service: ModerationService, caller: Caller, body: dict, _: float) -> dict:
    project = adapters_of(service).create_project(
        caller.account, body["ProjectName"], body.get("Feature"), body.get("AutoUpdate"))
    return {"ProjectArn": project.arn}


def describe_projects(service: ModerationService, caller: Caller, body: dict, _: float) -> dict:
    projects, token = adapters_of(service).describe_projects(
        caller.account, body.get("ProjectNames"), body.get("Features"),
        int(body.get("MaxResults", PAGE_SIZE)), body.get("NextToken"))
    response: dict = {"ProjectDescriptions": [project_to_wire(p) for p in projects]}
    if token:
        response["NextToken"] = token
    return response


def delete_project(service: ModerationService, caller: Caller, body: dict, _: float) -> dict:
    return {"Status": adapters_of(service).delete_project(caller.account, body["ProjectArn"])}


def create_project_version(
    service: ModerationService, caller: Caller, body: dict, _: float
) -> dict:
    output = body["OutputConfig"]
    if "S3Bucket" not in output:
        raise InvalidParameterException("OutputConfig.S3Bucket is required for an adapter")
    testing = body.get("TestingData") or {}
    threshold = ((body.get("FeatureConfig") or {}).get("ContentModeration") or {}).get(
        "ConfidenceThreshold")
    request = VersionRequest(
        project_arn=body["ProjectArn"],
        version_name=body["VersionName"],
        output_bucket=output["S3Bucket"],
        output_prefix=output.get("S3KeyPrefix", ""),
        training_manifests=manifest_refs((body.get("TrainingData") or {}).get("Assets"),
                                         "TrainingData"),
        testing_manifests=manifest_refs(testing.get("Assets"), "TestingData"),
        auto_create_testing=bool(testing.get("AutoCreate", False)),
        confidence_threshold=None if threshold is None else float(threshold),
        description=body.get("VersionDescription"),
        tags=dict(body.get("Tags") or {}),
        kms_key_id=body.get("KmsKeyId"),
    )
    arn = adapters_of(service).create_project_version(caller.account, request)
    return {"ProjectVersionArn": arn}


def manifest_refs(assets: list | None, where: str) -> tuple[ObjectRef, ...]:
    refs = []
    for position, asset in enumerate(assets or []):
        s3_object = (asset.get("GroundTruthManifest") or {}).get("S3Object") or {}
        if "Bucket" not in s3_object or "Name" not in s3_object:
            raise InvalidParameterException(
                f"{where}.Assets[{position}].GroundTruthManifest.S3Object needs Bucket and Name")
        refs.append(ObjectRef(s3_object["Bucket"], s3_object["Name"], s3_object.get("Version")))
    return tuple(refs)


def describe_project_versions(
    service: ModerationService, caller: Caller, body: dict, _: float
) -> dict:
    versions, token = adapters_of(service).describe_project_versions(
        caller.account, body["ProjectArn"], body.get("VersionNames"),
        int(body.get("MaxResults", PAGE_SIZE)), body.get("NextToken"))
    response: dict = {"ProjectVersionDescriptions": [project_version_to_wire(v) for v in versions]}
    if token:
        response["NextToken"] = token
    return response


def delete_project_version(
    service: ModerationService, caller: Caller, body: dict, _: float
) -> dict:
    return {"Status": adapters_of(service).delete_project_version(
        caller.account, body["ProjectVersionArn"])}


# -- media analysis (bulk images) ----------------------------------------------------------------

MEDIA_PAGE_SIZE = 100
"""ListMediaAnalysisJobs: the largest and default MaxResults."""


def media_of(service: ModerationService) -> MediaAnalysisService:
    if service.media is None:
        raise InternalServerError("Media analysis is not configured on this server")
    return service.media


def start_media_analysis_job(
    service: ModerationService, caller: Caller, body: dict, _: float
) -> dict:
    s3_object = body["Input"].get("S3Object") or {}
    if "Bucket" not in s3_object or "Name" not in s3_object:
        raise InvalidParameterException("Input.S3Object with Bucket and Name is required")
    output = body["OutputConfig"]
    moderation = body["OperationsConfig"].get("DetectModerationLabels")
    if moderation is None:
        raise InvalidParameterException(
            "OperationsConfig.DetectModerationLabels is required: it is the one operation a "
            "media analysis job runs")
    min_confidence = moderation.get("MinConfidence")
    request = MediaAnalysisRequest(
        manifest=ObjectRef(s3_object["Bucket"], s3_object["Name"], s3_object.get("Version")),
        output_bucket=output["S3Bucket"],
        output_prefix=output.get("S3KeyPrefix", ""),
        min_confidence=None if min_confidence is None else float(min_confidence),
        project_version=moderation.get("ProjectVersion"),
        job_name=body.get("JobName"),
        client_request_token=body.get("ClientRequestToken"),
        kms_key_id=body.get("KmsKeyId"),
    )
    return {"JobId": media_of(service).start_media_analysis_job(caller.account, request)}


def get_media_analysis_job(
    service: ModerationService, caller: Caller, body: dict, _: float
) -> dict:
    return media_analysis_job_to_wire(
        media_of(service).get_media_analysis_job(caller.account, body["JobId"]))


def list_media_analysis_jobs(
    service: ModerationService, caller: Caller, body: dict, _: float
) -> dict:
    jobs, token = media_of(service).list_media_analysis_jobs(
        caller.account, int(body.get("MaxResults", MEDIA_PAGE_SIZE)), body.get("NextToken"))
    response: dict = {"MediaAnalysisJobs": [media_analysis_job_to_wire(job) for job in jobs]}
    if token:
        response["NextToken"] = token
    return response


OPERATIONS: dict[str, Handler] = {
    "StartContentModeration": start_content_moderation,
    "GetContentModeration": get_content_moderation,
    "DetectModerationLabels": detect_moderation_labels,
    "CreateProject": create_project,
    "DescribeProjects": describe_projects,
    "DeleteProject": delete_project,
    "CreateProjectVersion": create_project_version,
    "DescribeProjectVersions": describe_project_versions,
    "DeleteProjectVersion": delete_project_version,
    "StartMediaAnalysisJob": start_media_analysis_job,
    "GetMediaAnalysisJob": get_media_analysis_job,
    "ListMediaAnalysisJobs": list_media_analysis_jobs,
}
