"""Every contract error this server can produce, received through boto3 as its typed exception."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from tests.doubles.scripted_runner import write_script
from tests.integration.api_fixtures import ROLE_ARN, rekognition_client

pytestmark = pytest.mark.integration

TOPIC = "arn:aws:sns:us-east-1:123456789012:AmazonRekognitionTopic"


@pytest.fixture(scope="module")
def api(scripted_api):
    write_script(scripted_api.objects_dir / "videos" / "clip.json", 4000, {1000: {"Weapons": 90.0}})
    (scripted_api.objects_dir / "videos" / "big.bin").write_bytes(b"x" * 1_000_001)
    return scripted_api


@pytest.fixture(scope="module")
def unchecked_client(api):
    """A client that skips botocore's own min/required checks, so the server's are tested."""
    return boto3.client(
        "rekognition",
        endpoint_url=api.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(parameter_validation=False, retries={"max_attempts": 1}),
    )


def video(name="clip.json", bucket="videos", version=None):
    s3_object = {"Bucket": bucket, "Name": name}
    if version is not None:
        s3_object["Version"] = version
    return {"S3Object": s3_object}


def finished_job(api, **members):
    job_id = api.client.start_content_moderation(Video=video(), **members)["JobId"]
    assert api.jobs.executor.wait_idle(10)
    return job_id


@pytest.mark.parametrize(
    "members",
    [
        {"Video": video(bucket="bad/bucket")},
        {"Video": video(bucket="b" * 256)},
        {"Video": video(name="n" * 1025)},
        {"Video": video(version="v" * 1025)},
        {"Video": video(version="")},
        {"Video": video(), "MinConfidence": 100.5},
        {"Video": video(), "MinConfidence": -1.0},
        {"Video": video(), "ClientRequestToken": "no spaces allowed"},
        {"Video": video(), "ClientRequestToken": "t" * 65},
        {"Video": video(), "JobTag": "bad tag!"},
        {"Video": video(), "JobTag": "t" * 1025},
        {
            "Video": video(),
            "NotificationChannel": {
                "SNSTopicArn": "arn:aws:sns:us-east-1:12:short",
                "RoleArn": ROLE_ARN,
            },
        },
        {
            "Video": video(),
            "NotificationChannel": {"SNSTopicArn": TOPIC, "RoleArn": "arn:aws:iam::123:role/r"},
        },
        {"Video": {}},
    ],
)
def test_start_parameters_are_checked_by_the_server(unchecked_client, members):
    with pytest.raises(unchecked_client.exceptions.InvalidParameterException):
        unchecked_client.start_content_moderation(**members)


@pytest.mark.parametrize(
    "members",
    [
        {"JobId": "not/a/job"},
        {"JobId": "a" * 65},
        {"JobId": ""},
        {"JobId": "a" * 64, "MaxResults": 0},
        {"JobId": "a" * 64, "NextToken": "t" * 256},
        {"JobId": "a" * 64, "SortBy": "CONFIDENCE"},
        {"JobId": "a" * 64, "AggregateBy": "FRAMES"},
    ],
)
def test_get_parameters_are_checked_by_the_server(unchecked_client, members):
    with pytest.raises(unchecked_client.exceptions.InvalidParameterException):
        unchecked_client.get_content_moderation(**members)


def test_idempotent_start_and_mismatch(api):
    client = api.client
    first = client.start_content_moderation(Video=video(), ClientRequestToken="tok-1", JobTag="a")[
        "JobId"
    ]
    assert (
        client.start_content_moderation(Video=video(), ClientRequestToken="tok-1", JobTag="a")[
            "JobId"
        ]
        == first
    )
    with pytest.raises(client.exceptions.IdempotentParameterMismatchException):
        client.start_content_moderation(Video=video(), ClientRequestToken="tok-1", JobTag="b")
    with pytest.raises(client.exceptions.IdempotentParameterMismatchException):
        client.start_content_moderation(
            Video=video(), ClientRequestToken="tok-1", JobTag="a", MinConfidence=70
        )
    api.jobs.executor.wait_idle(10)


def test_concurrent_duplicate_starts_get_one_job(api):
    from concurrent.futures import ThreadPoolExecutor

    clients = [rekognition_client(api.url) for _ in range(6)]
    with ThreadPoolExecutor(len(clients)) as pool:
        job_ids = list(
            pool.map(
                lambda client: client.start_content_moderation(
                    Video=video(), ClientRequestToken="race-1"
                )["JobId"],
                clients,
            )
        )
    assert len(set(job_ids)) == 1
    api.jobs.executor.wait_idle(10)


@pytest.mark.parametrize(
    "s3_video",
    [video(bucket="nobucket"), video(name="missing.mp4"), video(version="3HL4kqtJlcpXroDTDmJ")],
)
def test_missing_objects_are_invalid_s3_object(api, s3_video):
    with pytest.raises(api.client.exceptions.InvalidS3ObjectException):
        api.client.start_content_moderation(Video=s3_video)


def test_objects_over_the_size_limit_are_too_large(api):
    with pytest.raises(api.client.exceptions.VideoTooLargeException):
        api.client.start_content_moderation(Video=video(name="big.bin"))


def test_more_running_jobs_than_allowed_is_limit_exceeded(api):
    write_script(api.objects_dir / "videos" / "long.json", 12_000)
    api.runner.release.clear()  # hold jobs after their first segment
    try:
        api.client.start_content_moderation(Video=video(name="long.json"))
        api.client.start_content_moderation(Video=video(name="long.json"))
        with pytest.raises(api.client.exceptions.LimitExceededException):
            api.client.start_content_moderation(Video=video(name="long.json"))
    finally:
        api.runner.release.set()
    assert api.jobs.executor.wait_idle(10)
    api.client.start_content_moderation(Video=video(name="long.json"))  # room again once they end
    api.jobs.executor.wait_idle(10)


def test_unknown_jobs_are_resource_not_found(api):
    with pytest.raises(api.client.exceptions.ResourceNotFoundException):
        api.client.get_content_moderation(JobId="0" * 64)


def test_foreign_or_altered_tokens_are_invalid_pagination_tokens(api):
    client = api.client
    job_id, other_job_id = finished_job(api), finished_job(api)
    token = client.get_content_moderation(JobId=job_id, MaxResults=1)["NextToken"]
    assert client.get_content_moderation(JobId=job_id, MaxResults=1, NextToken=token)[
        "ModerationLabels"
    ]
    bad_calls = [
        {"JobId": other_job_id, "NextToken": token},
        {"JobId": job_id, "NextToken": token, "SortBy": "NAME"},
        {"JobId": job_id, "NextToken": token, "AggregateBy": "SEGMENTS"},
        {"JobId": job_id, "NextToken": "9" + token},
        {"JobId": job_id, "NextToken": "not-a-token"},
    ]
    for call in bad_calls:
        with pytest.raises(client.exceptions.InvalidPaginationTokenException):
            client.get_content_moderation(MaxResults=1, **call)


def test_error_responses_carry_a_request_id(api):
    with pytest.raises(api.client.exceptions.ResourceNotFoundException) as caught:
        api.client.get_content_moderation(JobId="1" * 64)
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["ResponseMetadata"]["RequestId"]
    assert "1111" in response["Error"]["Message"]
