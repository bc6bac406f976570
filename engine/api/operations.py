"""The operations we serve: wire body (validated dict) -> jobs request -> wire response dict.

PascalCase appears only here, at the edge; the jobs layer gets dataclasses. Each handler shares
its snake_case name with the jobs service method it calls.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.api.auth import Caller
from engine.errors import InvalidParameterException
from engine.jobs import GetRequest, ModerationService, NotificationChannel, StartRequest
from engine.jobs.service import MAX_PAGE_SIZE
from engine.jobs.types import ResultPage
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
    return page_to_wire(service.get_content_moderation(caller.account, request))


def page_to_wire(page: ResultPage) -> dict:
    job = page.job
    s3_object = {"Bucket": job.video.bucket, "Name": job.video.key}
    if job.video.version:
        s3_object["Version"] = job.video.version
    response: dict = {"JobStatus": job.state.wire_status}
    if job.status_message:
        response["StatusMessage"] = job.status_message
    if job.metadata is not None:
        response["VideoMetadata"] = job.metadata.to_wire()
    response["ModerationLabels"] = page.detections
    if page.next_token:
        response["NextToken"] = page.next_token
    response["ModerationModelVersion"] = job.model_version
    response["JobId"] = job.job_id
    response["Video"] = {"S3Object": s3_object}
    if job.job_tag:
        response["JobTag"] = job.job_tag
    response["GetRequestMetadata"] = {"SortBy": page.sort_by, "AggregateBy": page.aggregate_by}
    return response


OPERATIONS: dict[str, Handler] = {
    "StartContentModeration": start_content_moderation,
    "GetContentModeration": get_content_moderation,
}
