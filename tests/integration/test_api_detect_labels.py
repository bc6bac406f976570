"""boto3 `detect_moderation_labels` against real servers.

Errors and shapes: an in-process server over the local store (and one over moto S3) whose
runner is the scripted double, so images are scored by the colour test double, with no Ray.
The real thing: an in-process server with the real cluster runner, Ray and the default model,
for a JPEG, a PNG, an S3Object, and the same picture sent as an image and as a lossless H.264
video through StartContentModeration, which must score identically.
"""

from __future__ import annotations

import io
import socket
import time
from urllib.parse import urlsplit

import av
import numpy as np
import pytest
import skimage.data
from PIL import Image

from engine.server import build_server_app
from tests.doubles.colour_classifier import COLOUR_LABELS
from tests.doubles.scripted_runner import ScriptedRunnerDouble
from tests.integration.api_fixtures import (
    aws_client,
    in_process_server,
    rekognition_client,
    scripted_server,
    wait_for_job,
)

pytestmark = [pytest.mark.integration]

MAX_IMAGE_OBJECT_BYTES = 200_000


def encode(picture: np.ndarray, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format=image_format, **options)
    return buffer.getvalue()


def solid(colour: str, image_format: str = "PNG", size=(120, 160)) -> bytes:
    return encode(np.full((*size, 3), COLOUR_LABELS[colour][0], np.uint8), image_format)


def entries(response: dict) -> list[tuple[str, str, int, float]]:
    return [
        (label["Name"], label["ParentName"], label["TaxonomyLevel"], label["Confidence"])
        for label in response["ModerationLabels"]
    ]


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    """(client, data_dir, runner) of a server whose images the colour test double scores."""
    from engine.config import EngineSettings

    settings = EngineSettings(
        data_dir=tmp_path_factory.mktemp("detect-scripted"),
        max_image_object_bytes=MAX_IMAGE_OBJECT_BYTES,
    )
    runner = ScriptedRunnerDouble()
    app, _ = build_server_app(settings, runner_factory=lambda: runner)
    with in_process_server(app) as url:
        yield rekognition_client(url), settings.data_dir, url


# -- shapes, through the colour test double ------------------------------------------------


def test_a_jpeg_and_a_png_get_labels_and_the_model_version(scripted):
    client, _, _ = scripted
    red = client.detect_moderation_labels(Image={"Bytes": solid("red", "JPEG")})
    assert entries(red) == [
        ("Violence", "", 1, 95.0),
        ("Graphic Violence", "Violence", 2, 95.0),
        ("Blood & Gore", "Graphic Violence", 3, 95.0),
    ]
    assert red["ModerationModelVersion"] == "7.0"
    green = client.detect_moderation_labels(Image={"Bytes": solid("green")}, MinConfidence=79.5)
    assert entries(green) == [("Gambling", "", 1, 80.0), ("Gambling", "Gambling", 2, 80.0)]
    assert (
        client.detect_moderation_labels(Image={"Bytes": solid("green")}, MinConfidence=80.5)[
            "ModerationLabels"
        ]
        == []
    )


def test_an_image_object_in_the_local_store(scripted):
    client, data_dir, _ = scripted
    bucket = data_dir / "objects" / "images"
    bucket.mkdir(parents=True, exist_ok=True)
    (bucket / "blue.jpg").write_bytes(solid("blue", "JPEG"))
    response = client.detect_moderation_labels(
        Image={"S3Object": {"Bucket": "images", "Name": "blue.jpg"}}
    )
    assert [name for name, *_ in entries(response)] == ["Violence", "Weapons"]


def test_an_image_object_in_s3(tmp_path, moto_endpoint):
    s3 = aws_client("s3", moto_endpoint)
    s3.create_bucket(Bucket="photos")
    s3.put_bucket_versioning(Bucket="photos", VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket="photos", Key="a.png", Body=solid("magenta"))["VersionId"]
    s3.put_object(Bucket="photos", Key="a.png", Body=solid("green"))
    s3_settings = {"s3_endpoint": moto_endpoint, "s3_access_key": "x", "s3_secret_key": "y"}
    with scripted_server(tmp_path, **s3_settings) as (url, _, _):
        client = rekognition_client(url)
        latest = client.detect_moderation_labels(
            Image={"S3Object": {"Bucket": "photos", "Name": "a.png"}}
        )
        older = client.detect_moderation_labels(
            Image={"S3Object": {"Bucket": "photos", "Name": "a.png", "Version": first}}
        )
        assert entries(latest)[0][0] == "Gambling" and entries(older)[0][0] == "Explicit"
        with pytest.raises(client.exceptions.InvalidS3ObjectException):
            client.detect_moderation_labels(
                Image={"S3Object": {"Bucket": "photos", "Name": "missing.png"}}
            )


# -- typed errors ------------------------------------------------------------------------------


def truncated_jpeg() -> bytes:
    noisy = np.random.default_rng(4).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    whole = encode(noisy, "JPEG")
    return whole[: len(whole) // 2]


def oversized_header_png() -> bytes:
    """A 120x160 PNG whose header claims 10001 x 10001 pixels (over AWS's 10,000 a side)."""
    import struct
    import zlib

    png = solid("red")
    chunk = b"IHDR" + struct.pack(">II", 10_001, 10_001) + png[24:29]
    return png[:8] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + png[33:]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(np.random.default_rng(3).bytes(5000), id="random-bytes"),
        pytest.param(truncated_jpeg(), id="truncated-jpeg"),
        pytest.param(encode(np.zeros((40, 40, 3), np.uint8), "GIF"), id="gif"),
    ],
)
def test_a_bad_image_is_invalid_image_format(scripted, data):
    client, _, _ = scripted
    with pytest.raises(client.exceptions.InvalidImageFormatException):
        client.detect_moderation_labels(Image={"Bytes": data})


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_images_over_the_limits_are_too_large(scripted):
    client, data_dir, _ = scripted
    over_raw_limit = solid("red") + b"\0" * (5 * 1024 * 1024)  # PNG + padding: > 5 MiB
    with pytest.raises(client.exceptions.ImageTooLargeException, match="5242880"):
        client.detect_moderation_labels(Image={"Bytes": over_raw_limit})
    # Far over: refused from the declared length, before the body is read, still typed.
    with pytest.raises(client.exceptions.ImageTooLargeException, match="before base64"):
        client.detect_moderation_labels(Image={"Bytes": b"\0" * (20 * 1024 * 1024)})
    with pytest.raises(client.exceptions.ImageTooLargeException, match="10001x10001"):
        client.detect_moderation_labels(Image={"Bytes": oversized_header_png()})
    bucket = data_dir / "objects" / "images"
    bucket.mkdir(parents=True, exist_ok=True)
    (bucket / "big.png").write_bytes(solid("red") + b"\0" * MAX_IMAGE_OBJECT_BYTES)
    with pytest.raises(client.exceptions.ImageTooLargeException, match="s3://images/big.png"):
        client.detect_moderation_labels(Image={"S3Object": {"Bucket": "images", "Name": "big.png"}})


def test_a_body_too_large_for_any_image_is_refused_before_it_is_read(scripted):
    _, _, url = scripted
    parts = urlsplit(url)
    head = (
        f"POST / HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: {50 * 1024 * 1024}\r\n"
        "X-Amz-Target: RekognitionService.DetectModerationLabels\r\n"
        "Content-Type: application/x-amz-json-1.1\r\n\r\n"
    ).encode()
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        connection.sendall(head + b'{"Image": {"Bytes": "')
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 400") and b"ImageTooLargeException" in received
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "members",
    [
        pytest.param(
            {"Image": {"Bytes": b"x", "S3Object": {"Bucket": "abc", "Name": "a"}}}, id="both"
        ),
        pytest.param({"Image": {}}, id="neither"),
        pytest.param({"Image": {"Bytes": b"x"}, "MinConfidence": 101.0}, id="confidence"),
        pytest.param(
            {
                "Image": {"Bytes": b"x"},
                "HumanLoopConfig": {"HumanLoopName": "loop", "FlowDefinitionArn": "arn:aws:x"},
            },
            id="human-loop",
        ),
    ],
)
def test_malformed_requests_are_invalid_parameter(scripted, members):
    client, _, _ = scripted
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.detect_moderation_labels(**members)


# -- the real default model through the real cluster runner ------------------------------------


PHOTO_SIZE = (240, 320)


def photo(name: str) -> np.ndarray:
    """A real photograph (scikit-image's bundled data), cropped to an even 240 x 320."""
    picture = getattr(skimage.data, name)()[..., :3]
    return np.ascontiguousarray(picture[: PHOTO_SIZE[0], : PHOTO_SIZE[1]])


def lossless_video(path, picture: np.ndarray, seconds: int = 2) -> None:
    """The picture as H.264 in MP4, lossless RGB (libx264rgb, qp 0), one frame a second."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264rgb", rate=1)
        stream.width, stream.height, stream.pix_fmt = picture.shape[1], picture.shape[0], "rgb24"
        stream.options = {"qp": "0"}
        for _ in range(seconds):
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def real_api(tmp_path_factory, ray_session):
    """(client, data_dir) of a server with the real runner and the default model (fp32, so a
    frame scores the same alone or in a batch), on the session's Ray."""
    from engine.config import EngineSettings
    from engine.jobs import default_runner_factory

    settings = EngineSettings(
        data_dir=tmp_path_factory.mktemp("detect-real"),
        weights_cache_dir=tmp_path_factory.getbasetemp() / "model-weight-cache",
        model="default",
        precision="fp32",
        inference_actors=1,
    )
    app, _ = build_server_app(settings, runner_factory=default_runner_factory(settings))
    with in_process_server(app) as url:
        yield rekognition_client(url), settings.data_dir


def check_label_tree(response: dict) -> None:
    """Most confident first; each entry's parent is present with at least its confidence."""
    labels = response["ModerationLabels"]
    confidences = [label["Confidence"] for label in labels]
    assert confidences == sorted(confidences, reverse=True)
    present = {(label["Name"], label["TaxonomyLevel"]): label["Confidence"] for label in labels}
    for label in labels:
        assert 0 <= label["Confidence"] <= 100 and label["TaxonomyLevel"] in (1, 2, 3)
        assert (label["ParentName"] == "") == (label["TaxonomyLevel"] == 1)
        if label["ParentName"]:
            parent = present[(label["ParentName"], label["TaxonomyLevel"] - 1)]
            assert parent >= label["Confidence"]


@pytest.mark.ray
@pytest.mark.slow
def test_the_default_model_labels_a_jpeg_a_png_and_an_image_object(real_api):
    client, data_dir = real_api
    picture = photo("retina")  # orange and pink: this model's strongest false alarm in skimage
    as_png = client.detect_moderation_labels(
        Image={"Bytes": encode(picture, "PNG")}, MinConfidence=1
    )
    as_jpeg = client.detect_moderation_labels(
        Image={"Bytes": encode(picture, "JPEG", quality=95)}, MinConfidence=1
    )
    for response in (as_png, as_jpeg):
        assert response["ModerationModelVersion"] == "7.0"
        assert response["ModerationLabels"], "the model gives some label at least 1% confidence"
        check_label_tree(response)
    png_scores = {label["Name"]: label["Confidence"] for label in as_png["ModerationLabels"]}
    jpeg_scores = {label["Name"]: label["Confidence"] for label in as_jpeg["ModerationLabels"]}
    top = as_png["ModerationLabels"][0]["Name"]
    assert abs(png_scores[top] - jpeg_scores.get(top, 0.0)) < 5  # JPEG at q95 looks the same
    at_default = client.detect_moderation_labels(Image={"Bytes": encode(picture, "PNG")})
    assert_same_labels(at_default, as_png, min_confidence=50)

    bucket = data_dir / "objects" / "images"
    bucket.mkdir(parents=True, exist_ok=True)
    (bucket / "retina.png").write_bytes(encode(picture, "PNG"))
    from_store = client.detect_moderation_labels(
        Image={"S3Object": {"Bucket": "images", "Name": "retina.png"}}, MinConfidence=1
    )
    assert_same_labels(from_store, as_png, min_confidence=1)


# Two calls with the same picture may be batched with other frames, and batch composition
# changes float summation order: model scores agree to rounding, not bit for bit.
SCORE_TOLERANCE = 0.01


def assert_same_labels(got: dict, expected: dict, min_confidence: float) -> None:
    """The same labels with the same confidences (to SCORE_TOLERANCE) above min_confidence;
    labels within the tolerance of the threshold may be on either side of it."""
    def scored(response):
        return {(label["Name"], label["ParentName"], label["TaxonomyLevel"]): label["Confidence"]
                for label in response["ModerationLabels"]}

    got_scores, expected_scores = scored(got), scored(expected)
    clear = {key for key, value in expected_scores.items()
             if value >= min_confidence + SCORE_TOLERANCE}
    assert clear <= set(got_scores), clear - set(got_scores)
    for key, value in got_scores.items():
        assert value >= min_confidence
        assert abs(value - expected_scores.get(key, min_confidence)) <= SCORE_TOLERANCE, key


@pytest.mark.ray
@pytest.mark.slow
def test_an_image_and_the_same_picture_as_a_video_frame_score_the_same(real_api, tmp_path):
    client, data_dir = real_api
    picture = photo("retina")
    videos = data_dir / "objects" / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    lossless_video(videos / "retina.mp4", picture)
    job_id = client.start_content_moderation(
        Video={"S3Object": {"Bucket": "videos", "Name": "retina.mp4"}}, MinConfidence=0
    )["JobId"]
    image = client.detect_moderation_labels(
        Image={"Bytes": encode(picture, "PNG")}, MinConfidence=0
    )
    _, pages = wait_for_job(client, job_id, timeout_s=180)
    assert pages[0]["JobStatus"] == "SUCCEEDED", pages[0].get("StatusMessage")
    first_frame = {
        (d["ModerationLabel"]["Name"], d["ModerationLabel"]["TaxonomyLevel"]): d["ModerationLabel"][
            "Confidence"
        ]
        for page in pages
        for d in page["ModerationLabels"]
        if d["Timestamp"] == 0
    }
    as_image = {(name, level): confidence for name, _, level, confidence in entries(image)}
    assert set(as_image) == set(first_frame) and len(as_image) > 10  # MinConfidence 0: all
    for key, confidence in as_image.items():
        assert abs(confidence - first_frame[key]) < 0.01, key


def covered_label_keys() -> set[tuple[str, str, int]]:
    """(Name, ParentName, TaxonomyLevel) of every label the default sources can see."""
    from models.evidence import EvidenceHead, load_evidence_map
    from models.sources import default_source_names

    evidence_map = load_evidence_map()
    taxonomy = evidence_map.taxonomy
    covered = EvidenceHead(evidence_map, set(default_source_names())).covered_labels()
    return {(taxonomy.labels[i].name, taxonomy.parent_name(taxonomy.labels[i]),
             taxonomy.labels[i].level) for i in covered}


@pytest.mark.ray
@pytest.mark.slow
def test_at_min_confidence_zero_a_job_reports_only_covered_labels(real_api):
    """No phantom labels: every sampled frame lists exactly the labels some loaded source can
    evidence (with their ancestors), never one that no network sees."""
    client, data_dir = real_api
    videos = data_dir / "objects" / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    lossless_video(videos / "chelsea.mp4", photo("chelsea"), seconds=3)
    job_id = client.start_content_moderation(
        Video={"S3Object": {"Bucket": "videos", "Name": "chelsea.mp4"}}, MinConfidence=0
    )["JobId"]
    _, pages = wait_for_job(client, job_id, timeout_s=180)
    assert pages[0]["JobStatus"] == "SUCCEEDED", pages[0].get("StatusMessage")
    per_frame: dict[int, set] = {}
    for page in pages:
        for detection in page["ModerationLabels"]:
            label = detection["ModerationLabel"]
            per_frame.setdefault(detection["Timestamp"], set()).add(
                (label["Name"], label["ParentName"], label["TaxonomyLevel"]))
    covered = covered_label_keys()
    assert sorted(per_frame) == [0, 1000, 2000]
    for labels in per_frame.values():
        assert labels == covered
    assert 10 < len(covered) < 53
    names = {name for name, _, _ in covered}
    assert not names & {"Hate Symbols", "Nazi Party", "Smoking", "Corpses", "Sex Toys"}
    print(f"{len(covered)} covered labels per frame of 53: {sorted(names)}")


def cartoon_of(picture: np.ndarray) -> np.ndarray:
    """A drawn-looking version of a photograph: flat colours (median filter, 6-colour palette)
    and black outlines where the photo has edges, the way cartoon filters make them."""
    from PIL import ImageFilter, ImageOps

    image = Image.fromarray(picture).convert("RGB").resize((448, 448))
    flat = np.asarray(image.filter(ImageFilter.MedianFilter(7)).quantize(6).convert("RGB")).copy()
    edges = np.asarray(ImageOps.invert(image.convert("L").filter(ImageFilter.FIND_EDGES)))
    flat[edges <= 200] = 0
    return flat


def content_type_names(items: list[dict]) -> set[str]:
    return {content_type["Name"] for item in items for content_type in item["ContentTypes"]}


@pytest.mark.ray
@pytest.mark.slow
def test_a_cartoon_is_illustrated_and_a_photo_is_not_on_both_operations(real_api):
    """nsfwjs calls the cartoon a drawing (Illustrated 93 on the CPU at hand) and the photo
    neutral (0.4):
    ContentTypes says Illustrated for the first only, on DetectModerationLabels and on every
    GetContentModeration detection (TIMESTAMPS and SEGMENTS), as boto3 parses them."""
    client, data_dir = real_api
    astronaut = skimage.data.astronaut()[..., :3]  # whole: the 240 x 320 crop is mostly suit
    photo_picture, cartoon = astronaut, cartoon_of(astronaut)
    as_image = {name: client.detect_moderation_labels(
                    Image={"Bytes": encode(picture, "PNG")}, MinConfidence=0)
                for name, picture in (("photo", photo_picture), ("cartoon", cartoon))}
    assert [item["Name"] for item in as_image["cartoon"]["ContentTypes"]] == ["Illustrated"]
    assert as_image["cartoon"]["ContentTypes"][0]["Confidence"] >= 50
    assert as_image["photo"]["ContentTypes"] == []

    videos = data_dir / "objects" / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    for name, picture in (("photo", photo_picture), ("cartoon", cartoon)):
        lossless_video(videos / f"{name}-ct.mp4", picture)
        job_id = client.start_content_moderation(
            Video={"S3Object": {"Bucket": "videos", "Name": f"{name}-ct.mp4"}}, MinConfidence=0
        )["JobId"]
        _, pages = wait_for_job(client, job_id, timeout_s=180)
        assert pages[0]["JobStatus"] == "SUCCEEDED", pages[0].get("StatusMessage")
        segments = client.get_content_moderation(JobId=job_id, AggregateBy="SEGMENTS")
        for items in ([d for page in pages for d in page["ModerationLabels"]],
                      segments["ModerationLabels"]):
            assert items and all("ContentTypes" in item for item in items)
            expected = {"Illustrated"} if name == "cartoon" else set()
            assert content_type_names(items) == expected, name
            if name == "cartoon":
                assert all(item["ContentTypes"] for item in items)
