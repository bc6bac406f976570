"""Server-side validation against botocore's model: every max, pattern, range and enum."""

from __future__ import annotations

import pytest

from engine.api.contract import load_service_model, operation_for_target, validate_request
from engine.errors import InvalidParameterException, UnknownOperationException

START = load_service_model().operation_model("StartContentModeration")
GET = load_service_model().operation_model("GetContentModeration")
VIDEO = {"S3Object": {"Bucket": "videos", "Name": "clip.mp4"}}


def start_body(**members):
    return {"Video": VIDEO, **members}


def test_a_complete_valid_start_passes():
    body = start_body(
        MinConfidence=0,
        ClientRequestToken="tok-1_A",
        NotificationChannel={
            "SNSTopicArn": "arn:aws:sns:us-east-1:123456789012:AmazonRekognitionTopic",
            "RoleArn": "arn:aws:iam::123456789012:role/RekognitionRole",
        },
        JobTag="tag:a+b=c/d.e-f_g",
    )
    assert validate_request(START, body) is body


@pytest.mark.parametrize(
    "body, member",
    [
        ({}, "Video"),
        (start_body(Video={"S3Object": {"Bucket": "ab", "Name": "x"}}), "Bucket"),
        (start_body(Video={"S3Object": {"Bucket": "b" * 256, "Name": "x"}}), "Bucket"),
        (start_body(Video={"S3Object": {"Bucket": "bad/bucket", "Name": "x"}}), "Bucket"),
        (start_body(Video={"S3Object": {"Bucket": "videos", "Name": ""}}), "Name"),
        (start_body(Video={"S3Object": {"Bucket": "videos", "Name": "n" * 1025}}), "Name"),
        (
            start_body(Video={"S3Object": {"Bucket": "videos", "Name": "x", "Version": ""}}),
            "Version",
        ),
        (
            start_body(
                Video={"S3Object": {"Bucket": "videos", "Name": "x", "Version": "v" * 1025}}
            ),
            "Version",
        ),
        (start_body(MinConfidence=-0.5), "MinConfidence"),
        (start_body(MinConfidence=100.01), "MinConfidence"),
        (start_body(MinConfidence="50"), "MinConfidence"),
        (start_body(MinConfidence=True), "MinConfidence"),
        (start_body(ClientRequestToken="has space"), "ClientRequestToken"),
        (start_body(ClientRequestToken="t" * 65), "ClientRequestToken"),
        (start_body(JobTag="bad tag!"), "JobTag"),
        (start_body(JobTag="t" * 1025), "JobTag"),
        (
            start_body(
                NotificationChannel={
                    "SNSTopicArn": "arn:aws:sns:us-east-1:123:t",
                    "RoleArn": "arn:aws:iam::123456789012:role/r",
                }
            ),
            "SNSTopicArn",
        ),
        (
            start_body(
                NotificationChannel={
                    "SNSTopicArn": "arn:aws:sns:us-east-1:123456789012:t",
                    "RoleArn": "arn:aws:iam::12:role/r",
                }
            ),
            "RoleArn",
        ),
        (
            start_body(NotificationChannel={"SNSTopicArn": "arn:aws:sns:us-east-1:123456789012:t"}),
            "RoleArn",
        ),
        (start_body(Unexpected=1), "Unexpected"),
        (start_body(Video="clip.mp4"), "Video"),
    ],
)
def test_bad_start_members_name_the_member(body, member):
    with pytest.raises(InvalidParameterException, match=member):
        validate_request(START, body)


@pytest.mark.parametrize(
    "body, member",
    [
        ({}, "JobId"),
        ({"JobId": ""}, "JobId"),
        ({"JobId": "a" * 65}, "JobId"),
        ({"JobId": "not/hex"}, "JobId"),
        ({"JobId": "abc", "MaxResults": 0}, "MaxResults"),
        ({"JobId": "abc", "MaxResults": 2.5}, "MaxResults"),
        ({"JobId": "abc", "NextToken": "t" * 256}, "NextToken"),
        ({"JobId": "abc", "SortBy": "CONFIDENCE"}, "SortBy"),
        ({"JobId": "abc", "AggregateBy": "FRAMES"}, "AggregateBy"),
    ],
)
def test_bad_get_members_name_the_member(body, member):
    with pytest.raises(InvalidParameterException, match=member):
        validate_request(GET, body)


def test_max_results_above_1000_is_accepted_for_capping():
    assert validate_request(GET, {"JobId": "abc", "MaxResults": 5000})["MaxResults"] == 5000


def test_targets_resolve_only_to_served_operations():
    assert (
        operation_for_target(
            "RekognitionService.GetContentModeration", {"GetContentModeration"}
        ).name
        == "GetContentModeration"
    )
    for target in (None, "", "RekognitionService.DetectLabels", "Other.GetContentModeration"):
        with pytest.raises(UnknownOperationException):
            operation_for_target(target, {"GetContentModeration", "StartContentModeration"})
