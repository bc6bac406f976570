"""The server as a real process with the real cluster runner (Ray, PyAV, the colour test double),
reading videos from an S3-compatible server (moto) through the minio SDK, and publishing
completion messages through SNS into SQS and to a webhook. One server, one Ray, for the module."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.api_fixtures import (
    ROLE_ARN,
    ServerProcess,
    WebhookReceiver,
    aws_client,
    entries_of,
    expected_entries,
    rekognition_client,
    server_env,
    wait_for_job,
)
from tests.media import make_colour_video

pytestmark = [pytest.mark.integration, pytest.mark.ray, pytest.mark.slow]

WEBHOOK_TOPIC = "arn:aws:sns:us-east-1:123456789012:AmazonRekognitionWebhookTopic"


@pytest.fixture(scope="module")
def cluster_api(tmp_path_factory, moto_endpoint):
    work = tmp_path_factory.mktemp("s3-cluster")
    s3 = aws_client("s3", moto_endpoint)
    s3.create_bucket(Bucket="videos")
    s3.put_bucket_versioning(Bucket="videos", VersioningConfiguration={"Status": "Enabled"})
    first = make_colour_video(work / "first.mp4", [("red", 2), ("white", 1), ("blue", 2)])
    second = make_colour_video(work / "second.mp4", [("green", 3)])
    version_one = s3.put_object(
        Bucket="videos", Key="clip.mp4", Body=(work / "first.mp4").read_bytes()
    )["VersionId"]
    s3.put_object(Bucket="videos", Key="clip.mp4", Body=(work / "second.mp4").read_bytes())
    s3.put_object(Bucket="videos", Key="notes.txt", Body=b"this is not a video")

    sns, sqs = aws_client("sns", moto_endpoint), aws_client("sqs", moto_endpoint)
    topic_arn = sns.create_topic(Name="AmazonRekognitionDone")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="rekognition-done")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    webhook = WebhookReceiver()
    server = ServerProcess(
        work / "data",
        server_env(work / "data", s3_endpoint=moto_endpoint),
        ["--sns-endpoint", moto_endpoint, "--webhook", f"{WEBHOOK_TOPIC}={webhook.url}"],
        work / "server.log",
    ).start()
    try:
        yield {
            "client": rekognition_client(server.url),
            "version_one": version_one,
            "first": first,
            "second": second,
            "topic_arn": topic_arn,
            "queue_url": queue_url,
            "sqs": sqs,
            "webhook": webhook,
            "server": server,
        }
    finally:
        server.stop()
        webhook.close()


def sqs_messages(sqs, queue_url, wanted: int, timeout_s: float = 30) -> list[dict]:
    found, deadline = [], time.monotonic() + timeout_s
    while len(found) < wanted and time.monotonic() < deadline:
        reply = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in reply.get("Messages", []):
            found.append(json.loads(json.loads(message["Body"])["Message"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_versioned_object_runs_to_succeeded_and_notifies_through_sns(cluster_api):
    client = cluster_api["client"]
    started = client.start_content_moderation(
        Video={
            "S3Object": {
                "Bucket": "videos",
                "Name": "clip.mp4",
                "Version": cluster_api["version_one"],
            }
        },
        NotificationChannel={"SNSTopicArn": cluster_api["topic_arn"], "RoleArn": ROLE_ARN},
        JobTag="versioned-1",
    )
    job_id = started["JobId"]
    assert 1 <= len(job_id) <= 64
    polled, pages = wait_for_job(client, job_id, timeout_s=180, MaxResults=2)
    assert polled[0]["JobStatus"] == "IN_PROGRESS"
    assert pages[-1]["JobStatus"] == "SUCCEEDED", cluster_api["server"].log_tail()
    truth = cluster_api["first"]
    for page in pages:
        assert page["VideoMetadata"]["DurationMillis"] == pytest.approx(truth.duration_ms, abs=50)
        assert (
            page["VideoMetadata"]["FrameWidth"] == 64 and page["VideoMetadata"]["FrameHeight"] == 48
        )
        assert page["Video"]["S3Object"]["Version"] == cluster_api["version_one"]
        assert page["JobTag"] == "versioned-1"
    detections = [d for page in pages for d in page["ModerationLabels"]]
    # Version one (red, white, blue) and not the latest version (green) was analysed.
    assert entries_of(detections) == expected_entries(truth)

    [message] = sqs_messages(cluster_api["sqs"], cluster_api["queue_url"], wanted=1)
    assert message["JobId"] == job_id and message["Status"] == "SUCCEEDED"
    assert message["API"] == "StartContentModeration" and message["JobTag"] == "versioned-1"
    assert message["Video"] == {"S3ObjectName": "clip.mp4", "S3Bucket": "videos"}
    assert abs(message["Timestamp"] - time.time() * 1000) < 120_000


def test_latest_version_and_webhook_delivery(cluster_api):
    client = cluster_api["client"]
    job_id = client.start_content_moderation(
        Video={"S3Object": {"Bucket": "videos", "Name": "clip.mp4"}},
        NotificationChannel={"SNSTopicArn": WEBHOOK_TOPIC, "RoleArn": ROLE_ARN},
    )["JobId"]
    _, pages = wait_for_job(client, job_id, SortBy="NAME", AggregateBy="SEGMENTS")
    segments = [d for page in pages for d in page["ModerationLabels"]]
    assert {d["ModerationLabel"]["Name"] for d in segments} == {
        "Gambling"
    }  # green: Gambling > Gambling
    assert all(d["StartTimestampMillis"] == 0 and d["DurationMillis"] > 0 for d in segments)
    messages = cluster_api["webhook"].wait_for(
        lambda found: any(m["JobId"] == job_id for m in found), 30
    )
    message = next(m for m in messages if m["JobId"] == job_id)
    assert message["Status"] == "SUCCEEDED" and "JobTag" not in message
    headers, body = cluster_api["webhook"].received[-1]
    assert headers["x-amz-sns-message-type"] == "Notification"
    assert json.loads(body)["TopicArn"] == WEBHOOK_TOPIC


def test_a_non_video_fails_and_sends_failed(cluster_api):
    client = cluster_api["client"]
    job_id = client.start_content_moderation(
        Video={"S3Object": {"Bucket": "videos", "Name": "notes.txt"}},
        NotificationChannel={"SNSTopicArn": cluster_api["topic_arn"], "RoleArn": ROLE_ARN},
    )["JobId"]
    _, pages = wait_for_job(client, job_id)
    assert pages[-1]["JobStatus"] == "FAILED" and pages[-1]["StatusMessage"]
    assert pages[-1]["ModerationLabels"] == []
    messages = sqs_messages(cluster_api["sqs"], cluster_api["queue_url"], wanted=1)
    assert [(m["JobId"], m["Status"]) for m in messages] == [(job_id, "FAILED")]


def test_missing_s3_things_are_invalid_s3_object(cluster_api):
    client = cluster_api["client"]
    for s3_object in (
        {"Bucket": "no-such-bucket", "Name": "clip.mp4"},
        {"Bucket": "videos", "Name": "missing.mp4"},
        {"Bucket": "videos", "Name": "clip.mp4", "Version": "no-such-version"},
    ):
        with pytest.raises(client.exceptions.InvalidS3ObjectException):
            client.start_content_moderation(Video={"S3Object": s3_object})
