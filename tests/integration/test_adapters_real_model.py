"""Acceptance of Custom Moderation adapters on real photographs with the real model: a server
with the real cluster runner (Ray, the default model's frozen backbones, fp32) trains an
adapter for "Hate Symbols" (a label no default source covers: the base model never reports it)
from scikit-image photographs through boto3, positives one scene (coffee) and negatives the
others, augmented by crops and mirror images; the images live in the embedded object store.

Held-out positives must get the label at or above the version's ConfidenceThreshold and
held-out negatives must not, in at least 90% of cases, and the F1 DescribeProjectVersions
reports is recomputed here from DetectModerationLabels' answers on the testing images. A media
analysis job over 20 held-out photographs writes, for each, what DetectModerationLabels answers.
"""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
import skimage.data
from PIL import Image

from engine.server import build_server_app
from tests.integration.api_fixtures import in_process_server, rekognition_client

pytestmark = [pytest.mark.integration, pytest.mark.ray, pytest.mark.slow]

LABEL = "Hate Symbols"
THRESHOLD = 60.0
POSITIVE_SCENE = "coffee"
NEGATIVE_SCENES = ("astronaut", "chelsea", "rocket", "hubble_deep_field",
                   "immunohistochemistry", "camera", "coins", "grass")


def scene(name: str) -> np.ndarray:
    picture = getattr(skimage.data, name)()
    if picture.ndim == 2:
        picture = np.stack([picture] * 3, axis=-1)
    return np.ascontiguousarray(picture[..., :3])


def variant(picture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random crop (55-90% of each side) of the picture, mirrored half of the time."""
    height, width = picture.shape[:2]
    share = rng.uniform(0.55, 0.9)
    crop_h, crop_w = int(height * share), int(width * share)
    top, left = rng.integers(0, height - crop_h + 1), rng.integers(0, width - crop_w + 1)
    crop = picture[top : top + crop_h, left : left + crop_w]
    return np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop)


def jpeg(picture: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def dataset(seed: int, positives: int, per_negative_scene: int) -> list[tuple[np.ndarray, bool]]:
    rng = np.random.default_rng(seed)
    items = [(variant(scene(POSITIVE_SCENE), rng), True) for _ in range(positives)]
    items += [(variant(scene(name), rng), False)
              for name in NEGATIVE_SCENES for _ in range(per_negative_scene)]
    return items


def store_images(data_dir, prefix: str, items) -> tuple[str, list[tuple[str, bytes, bool]]]:
    """Write the images and their manifest into the embedded store's `data` bucket."""
    bucket = data_dir / "objects" / "data"
    bucket.mkdir(parents=True, exist_ok=True)
    lines, stored = [], []
    for number, (picture, positive) in enumerate(items):
        key = f"{prefix}/{number:03d}.jpg"
        encoded = jpeg(picture)
        (bucket / key).parent.mkdir(parents=True, exist_ok=True)
        (bucket / key).write_bytes(encoded)
        stored.append((key, encoded, positive))
        lines.append(json.dumps({"source-ref": f"s3://data/{key}",
                                 "content-moderation-groundtruth": {
                                     "ModerationLabels": [{"Name": LABEL}] if positive else []}}))
    (bucket / f"{prefix}.manifest").write_text("\n".join(lines) + "\n")
    return f"{prefix}.manifest", stored


@pytest.fixture(scope="module")
def trained(tmp_path_factory, ray_session):
    """(client, data_dir, version description, testing images, fresh held-out images)."""
    from engine.config import EngineSettings
    from engine.jobs import default_runner_factory

    settings = EngineSettings(
        data_dir=tmp_path_factory.mktemp("adapters-real"),
        weights_cache_dir=tmp_path_factory.getbasetemp() / "model-weight-cache",
        model="default", precision="fp32", inference_actors=1, segment_length_s=4,
    )
    data_dir = settings.data_dir
    training_manifest, _ = store_images(data_dir, "train", dataset(1, 12, 2))
    testing_manifest, testing = store_images(data_dir, "test", dataset(2, 6, 1))
    _, held_out = store_images(data_dir, "held-out", dataset(3, 10, 2))
    app, _jobs = build_server_app(settings, runner_factory=default_runner_factory(settings))
    with in_process_server(app) as url:
        client = rekognition_client(url)
        project = client.create_project(ProjectName="hate-symbols", Feature="CONTENT_MODERATION",
                                        AutoUpdate="DISABLED")["ProjectArn"]
        version = client.create_project_version(
            ProjectArn=project, VersionName="coffee-v1",
            OutputConfig={"S3Bucket": "results", "S3KeyPrefix": "adapters"},
            TrainingData={"Assets": [{"GroundTruthManifest": {
                "S3Object": {"Bucket": "data", "Name": training_manifest}}}]},
            TestingData={"Assets": [{"GroundTruthManifest": {
                "S3Object": {"Bucket": "data", "Name": testing_manifest}}}]},
            FeatureConfig={"ContentModeration": {"ConfidenceThreshold": THRESHOLD}},
        )["ProjectVersionArn"]
        deadline = time.monotonic() + 600
        while True:
            [description] = client.describe_project_versions(
                ProjectArn=project, VersionNames=["coffee-v1"])["ProjectVersionDescriptions"]
            if description["Status"] != "TRAINING_IN_PROGRESS":
                break
            assert time.monotonic() < deadline, "the training never finished"
            time.sleep(1)
        assert description["Status"] == "TRAINING_COMPLETED", description.get("StatusMessage")
        assert description["ProjectVersionArn"] == version
        yield client, data_dir, description, testing, held_out


def adapted_confidence(client, version: str, image: bytes) -> float | None:
    response = client.detect_moderation_labels(Image={"Bytes": image}, ProjectVersion=version,
                                               MinConfidence=0)
    assert response["ProjectVersion"] == version
    return next((label["Confidence"] for label in response["ModerationLabels"]
                 if label["Name"] == LABEL), None)


def test_the_reported_f1_is_what_detect_moderation_labels_answers_on_the_testing_images(trained):
    client, data_dir, description, testing, _ = trained
    version = description["ProjectVersionArn"]
    tp = fp = fn = 0
    for _, image, positive in testing:
        flagged = (adapted_confidence(client, version, image) or 0.0) >= THRESHOLD
        tp += flagged and positive
        fp += flagged and not positive
        fn += positive and not flagged
    recomputed = 2 * tp / (2 * tp + fp + fn)
    reported = description["EvaluationResult"]["F1Score"]
    print(f"F1 reported {reported}, recomputed {recomputed} (tp {tp}, fp {fp}, fn {fn})")
    assert reported == pytest.approx(recomputed, abs=1e-6)
    summary = description["EvaluationResult"]["Summary"]["S3Object"]
    document = json.loads((data_dir / "objects" / summary["Bucket"] / summary["Name"]).read_text())
    assert document["f1"] == pytest.approx(reported, abs=1e-6)


def test_held_out_photographs_are_labelled_correctly_in_at_least_90_percent(trained):
    client, _, description, _, held_out = trained
    version = description["ProjectVersionArn"]
    correct = 0
    for _, image, positive in held_out:
        confidence = adapted_confidence(client, version, image) or 0.0
        correct += (confidence >= THRESHOLD) == positive
    print(f"{correct} of {len(held_out)} held-out photographs right")
    assert correct >= 0.9 * len(held_out)
    # The base model alone never reports the label: it gives it < 10 (nothing at all).
    for _, image, _ in held_out[:3]:
        plain = client.detect_moderation_labels(Image={"Bytes": image}, MinConfidence=0)
        assert LABEL not in {label["Name"] for label in plain["ModerationLabels"]}


def scenes_video(path, scenes: list[str], seconds_each: int, size=(240, 320)) -> None:
    """H.264 (lossless RGB), one frame a second: each scene, resized, for `seconds_each` s."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264rgb", rate=1)
        stream.height, stream.width = size
        stream.pix_fmt, stream.options = "rgb24", {"qp": "0"}
        for name in scenes:
            picture = np.asarray(Image.fromarray(scene(name)).resize((size[1], size[0])))
            for _ in range(seconds_each):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_the_adapter_on_a_video_flags_the_positive_stretch_in_segments_and_nothing_else(trained):
    """Beyond Rekognition: `modengine adapters use` makes the account's video jobs use the
    adapter; a video whose middle third shows the positive scene gets the label there only."""
    from engine.api.keys import read_default_key
    from engine.cli import main
    from engine.jobs import inspection
    from tests.integration.api_fixtures import wait_for_job

    client, data_dir, description, _, _ = trained
    version = description["ProjectVersionArn"]
    account = read_default_key(data_dir / "credentials").account
    assert main(["adapters", "use", version, "--account", account,
                 "--data-dir", str(data_dir)]) == 0
    videos = data_dir / "objects" / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    scenes_video(videos / "thirds.mp4", ["chelsea", POSITIVE_SCENE, "rocket"], seconds_each=3)
    job_id = client.start_content_moderation(
        Video={"S3Object": {"Bucket": "videos", "Name": "thirds.mp4"}},
        MinConfidence=THRESHOLD)["JobId"]
    _, pages = wait_for_job(client, job_id, timeout_s=300, AggregateBy="SEGMENTS")
    assert pages[0]["JobStatus"] == "SUCCEEDED", pages[0].get("StatusMessage")
    flagged = [(d["StartTimestampMillis"], d["EndTimestampMillis"])
               for page in pages for d in page["ModerationLabels"]
               if d["ModerationLabel"]["Name"] == LABEL]
    print("Hate Symbols segments:", flagged)
    assert flagged and all(3000 <= start and end <= 6000 for start, end in flagged)
    covered = sum(end - start for start, end in flagged)
    assert covered >= 2000  # the stretch, not one stray frame
    details = inspection.job_details(inspection.open_store(data_dir), job_id)
    assert details["adapter"] == version
    main(["adapters", "use", "--clear", "--account", account, "--data-dir", str(data_dir)])


def test_a_media_analysis_job_writes_what_detect_moderation_labels_answers(trained):
    """StartMediaAnalysisJob over 20 held-out photographs with the adapter: each results line
    is DetectModerationLabels' answer for that photograph (confidences to float noise: the
    frames are batched differently)."""
    client, data_dir, description, _, held_out = trained
    version = description["ProjectVersionArn"]
    keys = [key for key, _, _ in held_out[:20]]
    (data_dir / "objects" / "data" / "bulk.manifest").write_text(
        "".join(json.dumps({"source-ref": f"s3://data/{key}"}) + "\n" for key in keys))
    job_id = client.start_media_analysis_job(
        OperationsConfig={"DetectModerationLabels": {"MinConfidence": 20,
                                                     "ProjectVersion": version}},
        Input={"S3Object": {"Bucket": "data", "Name": "bulk.manifest"}},
        OutputConfig={"S3Bucket": "results", "S3KeyPrefix": "media"})["JobId"]
    deadline = time.monotonic() + 300
    while (job := client.get_media_analysis_job(JobId=job_id))["Status"] not in (
            "SUCCEEDED", "FAILED"):
        assert time.monotonic() < deadline, "the media analysis job never finished"
        time.sleep(0.5)
    assert job["Status"] == "SUCCEEDED", job.get("FailureDetails")
    results = job["Results"]["S3Object"]
    lines = (data_dir / "objects" / results["Bucket"] / results["Name"]).read_text().splitlines()
    assert len(lines) == 20
    flagged = 0
    for text, key in zip(lines, keys, strict=True):
        entry = json.loads(text)
        assert entry["source-ref"] == f"s3://data/{key}"
        alone = client.detect_moderation_labels(
            Image={"S3Object": {"Bucket": "data", "Name": key}}, MinConfidence=20,
            ProjectVersion=version)
        bulk = entry["detect-moderation-labels"]
        assert bulk["ProjectVersion"] == alone["ProjectVersion"] == version
        assert bulk["ModerationModelVersion"] == alone["ModerationModelVersion"]
        assert labels_of(bulk) == pytest.approx(labels_of(alone), abs=1e-3), key
        assert labels_of(bulk, "ContentTypes") == pytest.approx(
            labels_of(alone, "ContentTypes"), abs=1e-3)
        flagged += (LABEL, "") in labels_of(bulk)
    print(f"{flagged} of 20 photographs flagged {LABEL} in bulk")
    assert flagged >= 9  # the ten coffee crops come first


def labels_of(response: dict, member: str = "ModerationLabels") -> dict:
    """{(Name, ParentName) or Name: Confidence} of a DetectModerationLabels-shaped answer."""
    return {(item["Name"], item["ParentName"]) if "ParentName" in item else item["Name"]:
            item["Confidence"] for item in response[member]}
