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
from engine.api.wire import image_moderation_to_wire, result_page_to_wire
from engine.errors import InvalidParameterException
from engine.jobs import GetRequest, ModerationService, NotificationChannel, StartRequest
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
    if "ProjectVersion" in body:
        raise InvalidParameterException(
            f"ProjectVersion {body['ProjectVersion']!r} is not supported: this service has no "
            "custom moderation adapters, only its default model"
        )
    moderation = service.detect_moderation_labels(
        caller.account,
        image_of(body["Image"]),
        float(body.get("MinConfidence", default_min_confidence)),
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


OPERATIONS: dict[str, Handler] = {
    "StartContentModeration": start_content_moderation,
    "GetContentModeration": get_content_moderation,
    "DetectModerationLabels": detect_moderation_labels,
}
