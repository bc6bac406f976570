"""DetectModerationLabels below HTTP: the wire handler's parsing, the jobs service's labels
(threshold, ancestors, order) through the scripted runner double, and the rate limit. No Ray."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from engine.api.auth import Caller
from engine.api.operations import OPERATIONS, image_of
from engine.api.ratelimit import limiter_from_settings
from engine.api.settings import ApiSettings
from engine.errors import (
    ImageTooLargeException,
    InvalidParameterException,
    InvalidS3ObjectException,
    ProvisionedThroughputExceededException,
    ResourceNotFoundException,
)
from engine.storage.base import ObjectRef
from tests.doubles.colour_classifier import COLOUR_LABELS
from tests.doubles.scripted_runner import scripted_job_system

DETECT = OPERATIONS["DetectModerationLabels"]


def png_of(colour: str, size: tuple[int, int] = (32, 32)) -> bytes:
    rgb = COLOUR_LABELS[colour][0] if colour in COLOUR_LABELS else (255, 255, 255)
    buffer = io.BytesIO()
    Image.new("RGB", size, rgb).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def jobs(tmp_path):
    system, runner, settings = scripted_job_system(tmp_path, max_image_object_bytes=10_000)
    return system, runner, settings


def caller() -> Caller:
    return Caller(access_key_id="AKIDTEST", account_id="123456789012")


def test_labels_are_the_leaf_and_every_ancestor_most_confident_first(jobs):
    system, runner, _ = jobs
    result = system.service.detect_moderation_labels("acct", png_of("red"), 50.0)
    assert [(d.name, d.parent_name, d.level, d.confidence) for d in result.labels] == [
        ("Violence", "", 1, 95.0),
        ("Graphic Violence", "Violence", 2, 95.0),
        ("Blood & Gore", "Graphic Violence", 3, 95.0),
    ]
    assert result.model_version == "7.0"
    (frames,) = runner.frames_classified
    assert frames.shape == (1, *runner.model_info.input_size, 3) and frames.dtype == np.uint8


def test_min_confidence_applies_as_for_video(jobs):
    system, _, _ = jobs
    assert system.service.detect_moderation_labels("acct", png_of("green"), 80.0).labels
    assert system.service.detect_moderation_labels("acct", png_of("green"), 80.01).labels == []
    assert system.service.detect_moderation_labels("acct", png_of("white"), 0.5).labels == []


def test_an_image_object_is_read_from_the_store_and_its_size_checked(jobs):
    system, _, settings = jobs
    bucket = settings.data_dir / "objects" / "images"
    bucket.mkdir(parents=True)
    (bucket / "blue.png").write_bytes(png_of("blue"))
    (bucket / "big.png").write_bytes(png_of("blue") + b"\0" * 10_000)
    labels = system.service.detect_moderation_labels("acct", ObjectRef("images", "blue.png"), 50)
    assert labels.labels[0].name == "Violence" and labels.labels[-1].name == "Weapons"
    with pytest.raises(ImageTooLargeException, match="s3://images/big.png"):
        system.service.detect_moderation_labels("acct", ObjectRef("images", "big.png"), 50)
    with pytest.raises(InvalidS3ObjectException):
        system.service.detect_moderation_labels("acct", ObjectRef("images", "gone.png"), 50)


def test_an_image_object_that_grew_after_its_size_check_is_still_refused(jobs, monkeypatch):
    """Read one byte past the limit: never more, and an object larger than its stat said is
    refused as too large rather than read in full."""
    from engine.storage.base import ObjectInfo

    system, _, settings = jobs
    bucket = settings.data_dir / "objects" / "images"
    bucket.mkdir(parents=True)
    (bucket / "grown.png").write_bytes(png_of("blue") + b"\0" * 10_000)
    monkeypatch.setattr(system.service.objects, "stat", lambda ref: ObjectInfo(10, None))
    with pytest.raises(ImageTooLargeException, match="s3://images/grown.png"):
        system.service.detect_moderation_labels("acct", ObjectRef("images", "grown.png"), 50)


def test_the_handler_puts_labels_on_the_wire(jobs):
    system, _, _ = jobs
    body = {"Image": {"Bytes": base64.b64encode(png_of("magenta")).decode()}, "MinConfidence": 99}
    response = DETECT(system.service, caller(), body, 50.0)
    assert response["ModerationModelVersion"] == "7.0"
    assert response["ModerationLabels"][0] == {
        "Confidence": 99.0,
        "Name": "Explicit",
        "ParentName": "",
        "TaxonomyLevel": 1,
    }
    assert [label["TaxonomyLevel"] for label in response["ModerationLabels"]] == [1, 2, 3]


@pytest.mark.parametrize(
    "image, message",
    [
        ({}, "exactly one of Bytes and S3Object"),
        ({"Bytes": "aGk=", "S3Object": {"Bucket": "abc", "Name": "x"}}, "exactly one"),
        ({"Bytes": "not base64!"}, "not valid base64"),
        ({"Bytes": "aGk"}, "not valid base64"),
        ({"Bytes": ""}, "length must be >= 1"),
        ({"Bytes": 12}, "base64-encoded string"),
        ({"S3Object": {"Bucket": "abc"}}, "Bucket and Name"),
    ],
)
def test_image_member_errors(image, message):
    with pytest.raises(InvalidParameterException, match=message):
        image_of(image)


def test_image_of_decodes_bytes_and_names_objects():
    assert image_of({"Bytes": base64.b64encode(b"\x89PNG").decode()}) == b"\x89PNG"
    ref = image_of({"S3Object": {"Bucket": "abc", "Name": "a.jpg", "Version": "7"}})
    assert ref == ObjectRef("abc", "a.jpg", "7")


def test_human_review_is_refused_clearly(jobs):
    system, runner, _ = jobs
    body = {"Image": {"Bytes": base64.b64encode(png_of("red")).decode()},
            "HumanLoopConfig": {"HumanLoopName": "loop", "FlowDefinitionArn": "arn:x"}}
    with pytest.raises(InvalidParameterException, match="not supported"):
        DETECT(system.service, caller(), body, 50.0)
    assert runner.frames_classified == []


def test_an_unknown_adapter_is_not_found_before_any_frame_is_classified(jobs):
    system, runner, _ = jobs
    body = {"Image": {"Bytes": base64.b64encode(png_of("red")).decode()},
            "ProjectVersion": "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v/1"}
    with pytest.raises(ResourceNotFoundException, match="does not exist"):
        DETECT(system.service, caller(), body, 50.0)
    assert runner.frames_classified == []


def test_the_operation_has_its_own_rate_limit():
    limiter = limiter_from_settings(
        ApiSettings(detect_rate_per_s=1.0, detect_burst=2), clock=lambda: 0.0
    )
    limiter.check("acct", "DetectModerationLabels")
    limiter.check("acct", "DetectModerationLabels")
    with pytest.raises(ProvisionedThroughputExceededException, match="DetectModerationLabels"):
        limiter.check("acct", "DetectModerationLabels")
    limiter.check("other", "DetectModerationLabels")


def test_image_decoding_errors_become_the_contract_errors(jobs):
    from engine.errors import InvalidImageFormatException

    system, _, _ = jobs
    with pytest.raises(InvalidImageFormatException, match="not a JPEG or PNG"):
        system.service.detect_moderation_labels("acct", b"GIF89a not an image", 50.0)
    with pytest.raises(ImageTooLargeException, match="10001x1 pixels"):
        system.service.detect_moderation_labels("acct", png_of("red", (10_001, 1)), 50.0)
