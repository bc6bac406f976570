"""The completion message (DESIGN.md section 4) and the SNS-style HTTP envelope around it."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

API_NAME = "StartContentModeration"


def completion_message(
    job_id: str, status: str, bucket: str, key: str, timestamp_ms: int, job_tag: str | None = None
) -> dict:
    """What Rekognition publishes when a job ends; JobTag appears only when the job had one."""
    message: dict = {"JobId": job_id, "Status": status, "API": API_NAME}
    if job_tag:
        message["JobTag"] = job_tag
    message["Timestamp"] = int(timestamp_ms)
    message["Video"] = {"S3ObjectName": key, "S3Bucket": bucket}
    return message


def sns_http_envelope(topic_arn: str, message: dict, message_id: str | None = None) -> dict:
    """An SNS HTTP(S) `Notification` body carrying `message` as its JSON-encoded Message.

    Unsigned: SignatureVersion/Signature are present for shape but carry no signature until
    engine/notify/signing.py's NotificationSigner signs it.
    """
    now = datetime.now(timezone.utc)
    return {
        "Type": "Notification",
        "MessageId": message_id or str(uuid.uuid4()),
        "TopicArn": topic_arn,
        "Message": json.dumps(message, separators=(",", ":")),
        "Timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "SignatureVersion": "1",
        "Signature": "",
        "SigningCertURL": "",
        "UnsubscribeURL": "",
    }
