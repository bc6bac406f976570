"""Property-based fuzzing of the three operations through the ASGI app (signed, in-process).

Bodies are generated from botocore's own input shapes: valid values (patterns, enums, ranges,
lengths) mixed with invalid ones (wrong JSON types, out-of-range and non-finite numbers, huge
and unicode strings, nulls, nested garbage, extra members, non-object bodies). Every response
must be a success or a contract error (4xx with {"__type", "Message"}), never a 500.
"""

from __future__ import annotations

import base64
import io
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

import engine.errors
from engine.api import build_app
from engine.api.contract import load_service_model
from engine.api.keys import KeyRing, create_default_credentials, read_default_key
from engine.api.sigv4 import SigV4Authenticator
from engine.notify import NotifySettings
from tests.doubles.scripted_runner import scripted_job_system, write_script
from tests.signing import signed_post

START_EXAMPLES = 1100
GET_EXAMPLES = 1000
DETECT_EXAMPLES = 400
RAW_EXAMPLES = 300
MINIMUM_TOTAL_REQUESTS = 2400
FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
CONTRACT_CODES = {
    name
    for name, value in vars(engine.errors).items()
    if isinstance(value, type) and issubclass(value, engine.errors.ServiceError)
}
SENT = {
    "requests": 0, "StartContentModeration": 0, "GetContentModeration": 0,
    "DetectModerationLabels": 0,
}
"""Requests sent in all, and successful (200) answers per operation."""
MODEL = load_service_model()
EXISTING_OBJECTS = [("videos", "clip.json"), ("videos", "broken.json")]
EXISTING_IMAGES = [("images", "red.png"), ("images", "red.jpg"), ("videos", "broken.json")]


def encoded_image(image_format: str, size: tuple[int, int] = (32, 24)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (220, 20, 20)).save(buffer, format=image_format)
    return buffer.getvalue()


IMAGES = [encoded_image("PNG"), encoded_image("JPEG"), encoded_image("GIF"), b"", b"\xff\xd8"]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**305),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
json_garbage = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
huge_strings = st.builds(
    lambda char, n: char * n,
    st.sampled_from("a\u00e9\u4e2d\U0001f600\x00/"),
    st.integers(1025, 70_000),
)
odd_text = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()), min_size=0, max_size=80
)


def valid_value(shape) -> st.SearchStrategy:
    """Values within the shape's constraints (as botocore's model states them)."""
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if shape.type_name == "structure":
        return st.fixed_dictionaries(
            {name: valid_value(shape.members[name]) for name in shape.required_members},
            optional={
                name: valid_value(member)
                for name, member in shape.members.items()
                if name not in shape.required_members
            },
        )
    if shape.type_name == "string":
        if shape.enum:
            return st.sampled_from(list(shape.enum))
        pattern = shape.metadata.get("pattern")
        low, high = low or 0, min(high or 200, 200)
        if pattern:
            return (
                st.from_regex(pattern, fullmatch=True)
                .map(lambda s: s[:high])
                .filter(lambda s: len(s) >= low)
            )
        return st.text(min_size=low, max_size=high)
    if shape.type_name == "integer":
        return st.integers(min_value=low, max_value=high if high is not None else 5000)
    if shape.type_name == "float":
        return st.floats(min_value=low, max_value=high, allow_nan=False)
    if shape.type_name == "boolean":
        return st.booleans()
    if shape.type_name == "blob":  # JSON carries blobs as base64 text
        raw = st.one_of(st.sampled_from(IMAGES), st.binary(max_size=64))
        return raw.map(lambda data: base64.b64encode(data).decode())
    return json_garbage


def invalid_value(shape) -> st.SearchStrategy:
    """Values a client might send that break the shape: type, range, length, pattern."""
    options = [json_garbage, odd_text, huge_strings]
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if shape.type_name in ("integer", "float"):
        options.append(st.sampled_from([math.nan, math.inf, -math.inf, 10**400, "50", True]))
        if low is not None:
            options.append(st.floats(max_value=low, exclude_max=True, allow_nan=False))
        if high is not None:
            options.append(st.floats(min_value=high, exclude_min=True, allow_nan=False))
    if shape.type_name == "structure":
        options.append(
            st.dictionaries(st.text(max_size=12), json_garbage, max_size=3).map(
                lambda extra: {**extra, "Unexpected": 1}
            )
        )
    return st.one_of(options)


def any_value(shape, depth: int = 0) -> st.SearchStrategy:
    """Mostly valid, sometimes not; structures mix member by member and may gain extras."""
    if shape.type_name == "structure" and depth < 4:
        members = {name: any_value(member, depth + 1) for name, member in shape.members.items()}
        body = st.fixed_dictionaries(
            {name: members[name] for name in shape.required_members},
            optional={name: s for name, s in members.items() if name not in shape.required_members},
        )
        with_nulls = body.flatmap(
            lambda d: st.fixed_dictionaries(
                {k: st.one_of(st.just(v), st.none()) for k, v in d.items()}
            )
        )
        with_extra = st.tuples(body, st.text(min_size=1, max_size=10), json_garbage).map(
            lambda t: {**t[0], t[1]: t[2]}
        )
        dropped = body.map(lambda d: dict(list(d.items())[1:]))
        return st.one_of(body, body, with_nulls, with_extra, dropped, invalid_value(shape))
    return st.one_of(valid_value(shape), valid_value(shape), invalid_value(shape))


def start_bodies():
    shape = MODEL.operation_model("StartContentModeration").input_shape
    existing = st.sampled_from(EXISTING_OBJECTS).map(
        lambda ref: {"Video": {"S3Object": {"Bucket": ref[0], "Name": ref[1]}}}
    )
    valid_existing = st.tuples(existing, valid_value(shape)).map(lambda t: {**t[1], **t[0]})
    return st.one_of(any_value(shape), valid_existing, json_garbage)


def get_bodies(job_ids):
    shape = MODEL.operation_model("GetContentModeration").input_shape
    known = st.tuples(st.sampled_from(job_ids), any_value(shape)).map(
        lambda t: {**t[1], "JobId": t[0]} if isinstance(t[1], dict) else t[1]
    )
    readable = st.tuples(st.just(job_ids[0]), valid_value(shape)).map(
        lambda t: {
            key: value for key, value in {**t[1], "JobId": t[0]}.items() if key != "NextToken"
        }
    )
    return st.one_of(any_value(shape), known, readable, json_garbage)


def detect_bodies():
    shape = MODEL.operation_model("DetectModerationLabels").input_shape
    image_bytes = st.sampled_from(IMAGES).map(
        lambda data: {"Image": {"Bytes": base64.b64encode(data).decode()}}
    )
    image_object = st.sampled_from(EXISTING_IMAGES).map(
        lambda ref: {"Image": {"S3Object": {"Bucket": ref[0], "Name": ref[1]}}}
    )
    confidence = st.one_of(st.just({}), st.floats(0, 100).map(lambda c: {"MinConfidence": c}))
    readable = st.sampled_from(IMAGES[:2]).map(
        lambda data: {"Image": {"Bytes": base64.b64encode(data).decode()}}
    )
    valid = st.tuples(st.one_of(image_bytes, image_object), confidence).map(
        lambda t: {**t[0], **t[1]}
    )
    good = st.tuples(readable, confidence).map(lambda t: {**t[0], **t[1]})
    return st.one_of(any_value(shape), valid, good, good, json_garbage)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("fuzz")
    notify = NotifySettings(sns_endpoint="http://127.0.0.1:9", max_attempts=1, timeout_s=1)
    jobs, _, _ = scripted_job_system(data_dir, notify_settings=notify, max_concurrent_jobs=50)
    objects = data_dir / "objects" / "videos"
    write_script(objects / "clip.json", 3000, {1000: {"Weapons": 90}, 2000: {"Alcohol": 70}})
    (objects / "broken.json").write_bytes(b"\x00not a video")
    (data_dir / "objects" / "images").mkdir(parents=True)
    (data_dir / "objects" / "images" / "red.png").write_bytes(IMAGES[0])
    (data_dir / "objects" / "images" / "red.jpg").write_bytes(IMAGES[1])
    create_default_credentials(data_dir / "credentials")
    key = read_default_key(data_dir / "credentials")
    authenticator = SigV4Authenticator(KeyRing([data_dir / "credentials"]))
    client = TestClient(build_app(jobs.service, authenticator), raise_server_exceptions=False)
    jobs.start()
    job_id = signed_post(
        client,
        key.access_key_id,
        key.secret_access_key,
        "StartContentModeration",
        {"Video": {"S3Object": {"Bucket": "videos", "Name": "clip.json"}}},
    ).json()["JobId"]
    assert jobs.executor.wait_idle(10)
    yield client, key, [job_id, "0" * 64]
    jobs.stop()


def send(api, operation: str, body) -> None:
    client, key, _ = api
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = signed_post(client, key.access_key_id, key.secret_access_key, operation, raw)
    SENT["requests"] += 1
    assert response.status_code < 500, (operation, body, response.text)
    document = response.json()
    if response.status_code == 200:
        SENT[operation] += 1
        expected = {"Start": "JobId", "Get": "JobStatus", "Detect": "ModerationLabels"}
        assert next(v for k, v in expected.items() if operation.startswith(k)) in document
        return
    assert 400 <= response.status_code < 500
    assert set(document) == {"__type", "Message"}, document
    assert document["__type"] in CONTRACT_CODES and isinstance(document["Message"], str)
    assert "Traceback" not in document["Message"]


def test_start_content_moderation_never_answers_500(api):
    @settings(FUZZ, max_examples=START_EXAMPLES)
    @given(body=start_bodies())
    def run(body):
        send(api, "StartContentModeration", body)

    before = SENT["requests"]
    run()
    assert SENT["requests"] - before >= START_EXAMPLES


def test_get_content_moderation_never_answers_500(api):
    @settings(FUZZ, max_examples=GET_EXAMPLES)
    @given(body=get_bodies(api[2]))
    def run(body):
        send(api, "GetContentModeration", body)

    before = SENT["requests"]
    run()
    assert SENT["requests"] - before >= GET_EXAMPLES


def test_detect_moderation_labels_never_answers_500(api):
    @settings(FUZZ, max_examples=DETECT_EXAMPLES)
    @given(body=detect_bodies())
    def run(body):
        send(api, "DetectModerationLabels", body)

    before = SENT["requests"]
    run()
    assert SENT["requests"] - before >= DETECT_EXAMPLES


def test_raw_bytes_bodies_never_answer_500(api):
    @settings(FUZZ, max_examples=RAW_EXAMPLES)
    @given(
        raw=st.one_of(
            st.binary(max_size=200),
            st.builds(lambda n: b"[" * n + b"]" * n, st.integers(1, 50_000)),
            st.builds(lambda n: b'{"JobId":' * n, st.integers(1, 20_000)),
        ),
        operation=st.sampled_from(
            ["StartContentModeration", "GetContentModeration", "DetectModerationLabels"]
        ),
    )
    def run(raw, operation):
        send(api, operation, raw)

    before = SENT["requests"]
    run()
    assert SENT["requests"] - before >= RAW_EXAMPLES


def test_at_least_2000_generated_requests_were_sent_and_valid_ones_succeeded():
    print(f"fuzzed requests: {SENT}")
    assert SENT["requests"] >= MINIMUM_TOTAL_REQUESTS, SENT
    assert SENT["StartContentModeration"] >= 50 and SENT["GetContentModeration"] >= 50, SENT
    assert SENT["DetectModerationLabels"] >= 20, SENT  # most generated bodies are invalid
